from nrtool.cli.main import run

run()
