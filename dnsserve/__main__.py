from dnsserve.cli import main

main()
