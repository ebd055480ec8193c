"""``python -m vtrack`` runs the command line."""

from vtrack.cli import main

if __name__ == "__main__":
    main()
