from designer.cli import console_main

console_main()
