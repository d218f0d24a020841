"""The web app: a progressive web app of plain ES modules that ships inside this package, and the
routes that serve it.

The app talks to the cloud only through the public ``/api/v1`` API and its WebSockets; this
package serves files and knows nothing of the cloud's internals. ``cloud serve`` mounts it with
:func:`mount_web`.
"""

from ecommunity.web.routes import SCREENS, mount_web

__all__ = ["SCREENS", "mount_web"]
