from trucewatch.cli.app import main

main()
