"""``ecommunity demo``: the whole platform on one machine, with a simulated neighbourhood.

:mod:`ecommunity.demo.neighbourhood` says who lives there (pure data); :mod:`.runner` starts the
cloud, a simulated meter per household writing real encrypted frames into a pty, a real
``ecommunity gateway run`` process per household reading that pty, pairs each gateway with its
household's account through the device grant, and sets up the demo community.
"""
