"""``python -m mediagen.cli``: the same as the ``mediagen`` console script."""

from mediagen.cli.main import main

if __name__ == "__main__":
    main()
