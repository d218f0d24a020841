from ecommunity.cli import main

raise SystemExit(main())
