"""`python -m nst_fast`: the `nst-fast` command, where its console script is not on PATH."""
from .cli import main

main()
