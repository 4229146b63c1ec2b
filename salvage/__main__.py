from salvage.cli import main

main(prog_name="salvage")  # also under `python -m salvage`: completion, usage
