"""A real Picard 3 session, driven: ``python picard_session.py SPEC.json RESULT.json``.

Run by tests/test_picard.py in a process of its own (a Qt application per process, its
own Picard configuration and plugin folder). It starts Picard's ``Tagger`` (with
``QT_QPA_PLATFORM=offscreen``, or a real display under Xvfb for the screenshots),
installs the built plugin folder with Picard's plugin manager exactly as Options >
Plugins > Install Plugin... > Local does, enables it, sets its options through its
options page, loads the files with ``tagger.add_files``, selects them and triggers the
plugin's action (as the context menu's Plugins entry does), waits for the run, and
writes what Picard then holds: each file's metadata, the log, the status bar messages.

SPEC (JSON): ``plugin`` (the built plugin folder), ``files``, ``options`` (field ->
value on the options page), ``preset`` (path -> genres set in Picard before the run),
``select`` ("files" or "cluster"), ``screenshots`` (folder: the context menu and the
options page as PNG; needs a display), ``timeout_s``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    home = Path(tempfile.mkdtemp(prefix="picard-home-"))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        os.environ[name] = str(home / name.lower())
    os.environ["PICARD_PLUGIN_DIR"] = str(home / "plugins3")
    if not spec.get("screenshots"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    from PyQt6 import QtCore, QtWidgets

    from picard import log
    from picard import tagger as tagger_module

    log.enable_default_handlers()
    tagger_module.setup_application()
    sys.argv = ["picard", "-c", str(home / "Picard.ini"), "-s", "-M", "-N"]
    tagger = tagger_module.Tagger(tagger_module.process_cmdline_args(), None, False, pipe_handler=None)
    result: dict = {"log": [], "status": [], "files": {}}

    window = tagger.window
    original_status = window.set_statusbar_message

    def recording_status(message, *args, **kwargs):
        result["status"].append(message % args[0] if args and isinstance(args[0], dict) else message)
        return original_status(message, *args, **kwargs)

    window.set_statusbar_message = recording_status

    def wait(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tagger.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if condition():
                return True
            time.sleep(0.02)
        return False

    try:
        manager = tagger.get_plugin_manager()
        plugin_id = manager.install_plugin(spec["plugin"], enable_after_install=True)
        plugin = manager.plugin_id_to_plugin(plugin_id)
        result["plugin"] = {"id": plugin_id, "state": plugin.state.value, "name": plugin.manifest.name()}
        module = sys.modules[plugin.module_name]
        ui = sys.modules[plugin.module_name + ".ui"]

        from picard.extension_points.item_actions import (
            ext_point_album_actions, ext_point_cluster_actions, ext_point_file_actions, ext_point_track_actions,
        )
        from picard.extension_points.options_pages import ext_point_options_pages

        result["actions"] = {
            kind: [action.TITLE for action in point]
            for kind, point in (("file", ext_point_file_actions), ("track", ext_point_track_actions),
                                ("album", ext_point_album_actions), ("cluster", ext_point_cluster_actions))
        }
        pages = [page for page in ext_point_options_pages if page.__module__.startswith(module.__name__)]
        result["options_pages"] = [page.TITLE for page in pages]

        # the options page, as the user fills it in and presses OK
        page = pages[0]()
        page.load()
        for field, value in (spec.get("options") or {}).items():
            widget = getattr(page, field)
            if isinstance(widget, QtWidgets.QLineEdit):
                widget.setText(str(value))
            elif isinstance(widget, QtWidgets.QComboBox):
                widget.setCurrentIndex(widget.findData(value))
            else:
                widget.setValue(value)
        page.save()

        files = [str(Path(path).resolve()) for path in spec["files"]]
        tagger.add_files(files)
        loaded = wait(lambda: len(tagger.files) == len(files)
                      and all(f.state != f.State.PENDING for f in tagger.files.values()), 30)
        result["loaded"] = loaded
        for path, genres in (spec.get("preset") or {}).items():
            tagger.files[str(Path(path).resolve())].metadata["genre"] = genres
        picard_files = [tagger.files[path] for path in files if path in tagger.files]
        if spec.get("select") == "cluster":
            selected = [tagger.unclustered_files]
        else:
            selected = picard_files

        if spec.get("screenshots"):
            screenshots(tagger, window, page, selected, Path(spec["screenshots"]), wait)

        action_class = next(action for action in ext_point_file_actions if action.TITLE == ui.TITLE)
        action = action_class()
        window.selected_objects = selected
        action.trigger()  # BaseAction's own path: the callback on window.selected_objects
        result["finished"] = wait(lambda: not ui.busy(), spec.get("timeout_s", 300))
        wait(lambda: False, 0.2)  # the last queued updates

        for file in picard_files:
            result["files"][file.filename] = {
                "genre": file.metadata.getall("genre"),
                "confidence": file.metadata.get("~genre_confidence"),
                "original_genre": file.orig_metadata.getall("genre"),
                "state": file.state.name,
            }
        result["statusbar"] = window.statusBar().currentMessage()
    except Exception:
        import traceback

        result["error"] = traceback.format_exc()
    finally:
        result["log"] = [entry.message for entry in log.main_tail.contents()]
        Path(result_path).write_text(json.dumps(result, indent=1))
    os._exit(0)  # Picard's own exit waits for thread pools and writes its config: not wanted here


def screenshots(tagger, window, page, selected, folder: Path, wait) -> None:
    """The context menu of the selected files (its Plugins submenu open) and the options
    page, grabbed from the screen of a real display (Xvfb)."""
    from PyQt6 import QtCore, QtGui, QtWidgets

    from picard.ui.itemviews import FileTreeView

    def note(text):
        print(f"screenshots: {text}", file=sys.stderr, flush=True)

    folder.mkdir(parents=True, exist_ok=True)
    window.resize(1100, 600)
    window.move(0, 0)
    window.show_startup_dialogs = lambda: None  # the first run's welcome, setup wizard and tutorial: modal
    window.show()
    wait(lambda: False, 1.5)
    note("window shown")
    view = window.findChildren(FileTreeView)[0]
    view.expandAll()
    items = [item for item in _tree_items(view) if getattr(item, "obj", None) in selected]
    view.clearSelection()
    for item in items:
        item.setSelected(True)
    window.selected_objects = list(selected)
    wait(lambda: False, 0.5)
    note(f"{len(items)} items selected")
    screen = QtGui.QGuiApplication.primaryScreen()

    menus = []
    exec_ = QtWidgets.QMenu.exec
    QtWidgets.QMenu.exec = lambda menu, *args: (menus.append(menu), menu.popup(*args))[0]  # not modal: driven here
    try:
        rect = view.visualItemRect(items[0]) if items else QtCore.QRect(40, 40, 10, 10)
        position = rect.center()
        event = QtGui.QContextMenuEvent(QtGui.QContextMenuEvent.Reason.Mouse, position,
                                        view.viewport().mapToGlobal(position))
        view.contextMenuEvent(event)
    finally:
        QtWidgets.QMenu.exec = exec_
    wait(lambda: False, 0.7)
    note(f"{len(menus)} menu(s) open")
    if menus:
        menu = menus[0]
        plugins = next((a for a in menu.actions() if a.menu() is not None and "lugins" in a.text()), None)
        if plugins is not None:
            menu.setActiveAction(plugins)
            plugins.menu().popup(menu.mapToGlobal(menu.actionGeometry(plugins).topRight()))
            wait(lambda: False, 0.7)
            submenu = plugins.menu()
            ours = next((a for a in submenu.actions() if "genre-tagger" in a.text()), None)
            if ours is not None:
                submenu.setActiveAction(ours)
            wait(lambda: False, 0.5)
        screen.grabWindow(0, 0, 0, 1100, 600).save(str(folder / "picard-context-menu.png"))
        note("context menu grabbed")
        for open_menu in reversed(menus + ([plugins.menu()] if plugins is not None else [])):
            open_menu.close()
    wait(lambda: False, 0.3)

    dialog = QtWidgets.QDialog(window)
    dialog.setWindowTitle("Picard options: Plugins > genre-tagger")
    layout = QtWidgets.QVBoxLayout(dialog)
    page.setParent(dialog)
    layout.addWidget(page)
    dialog.resize(760, 400)
    dialog.show()
    wait(lambda: False, 1.0)
    dialog.grab().save(str(folder / "picard-options.png"))
    note("options page grabbed")
    dialog.hide()
    page.setParent(None)


def _tree_items(view):
    root = view.invisibleRootItem()
    stack = [root.child(i) for i in range(root.childCount())]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(item.child(i) for i in range(item.childCount()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
