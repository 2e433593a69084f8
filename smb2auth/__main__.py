"""`python -m smb2auth`: the `smb2auth` command."""

from smb2auth.commands.main import main

raise SystemExit(main())
