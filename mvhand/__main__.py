from mvhand.cli.main import main

main()
