"""``python -m hypbias`` is the ``hypbias`` command."""

from hypbias.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
