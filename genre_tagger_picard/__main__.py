"""``python -m genre_tagger_picard [--out DIR] [--zip]``: the Picard plugin's folder, built.

Picard 3 installs a plugin from a local folder (Options > Plugins > Install Plugin... >
Local) and loads it from there, in place: so the folder is built where it can stay, by
default in genre-tagger's own data folder. ``--zip`` also packs it, to take to another
computer (unpack it there, and install the unpacked folder).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

#: the plugin's folder name: Picard's id for it (``picard.plugins.genre_tagger``)
PLUGIN_ID = "genre_tagger"
#: what the plugin is: the files Picard loads (the build command itself stays out)
PLUGIN_FILES = ("MANIFEST.toml", "__init__.py", "command.py", "ui.py")
SOURCE = Path(__file__).resolve().parent


def default_out() -> Path:
    """Where the folder goes unless ``--out`` says: genre-tagger's data folder."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("genre-tagger")) / "picard-plugin"


def build(out: Path, make_zip: bool = False) -> Path:
    """Write the plugin's folder ``out/genre_tagger`` (replacing an older build of it) and,
    with ``make_zip``, ``out/genre_tagger.zip``; returns the folder."""
    folder = out / PLUGIN_ID
    if folder.exists() and not (folder / "MANIFEST.toml").is_file():
        raise SystemExit(f"error: {folder} exists and is not a build of the plugin: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".{PLUGIN_ID}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in PLUGIN_FILES:
        shutil.copy2(SOURCE / name, staging / name)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    if make_zip:
        with zipfile.ZipFile(out / f"{PLUGIN_ID}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            for name in PLUGIN_FILES:
                archive.write(folder / name, f"{PLUGIN_ID}/{name}")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_tagger_picard",
                                     description="Build the genre-tagger plugin for MusicBrainz Picard 3.")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to build it in (default: genre-tagger's data folder, %(default)s)")
    parser.add_argument("--zip", action="store_true", help="also write genre_tagger.zip beside the folder")
    args = parser.parse_args(argv)
    out = (args.out or default_out()).expanduser().resolve()
    folder = build(out, args.zip)
    print(f"Built the Picard plugin in {folder}")
    if args.zip:
        print(f"and {out / (PLUGIN_ID + '.zip')}")
    print("Install it in Picard 3: Options > Plugins > Install Plugin... > Local, directory "
          f"{folder}; then enable it.\nOr: picard-cli plugins install {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
