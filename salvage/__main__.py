from salvage.cli import main

main()
