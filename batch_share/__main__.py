from batch_share.cli import main

main()
