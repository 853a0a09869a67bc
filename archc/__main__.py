"""`python -m archc ...` runs the command line, as `archc ...` does (editors start `python -m archc lsp`)."""

from archc.cli import entry_point

if __name__ == "__main__":
    entry_point()
