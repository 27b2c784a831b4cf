from dpa_service.cli import main

main()
