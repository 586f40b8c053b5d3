from ganzoo.cli import entry

entry()
