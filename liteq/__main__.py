"""``python -m liteq`` is the ``liteq`` command."""

from liteq.cli import main

if __name__ == "__main__":
    main()
