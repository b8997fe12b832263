"""python -m ingest IMAGES_DIR: the same as `python -m kb ingest IMAGES_DIR` (see kb.cli)."""

import argparse
import sys

from kb.cli import add_ingest_parser, run

parser = argparse.ArgumentParser(prog="python -m ingest", description="Add a folder of images to a knowledge base.")
sys.exit(run(add_ingest_parser(parser).parse_args()))
