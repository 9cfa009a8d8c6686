"""The Picard side: the context-menu action, the work off Picard's GUI thread, the
metadata it sets, and the options page. Imported by ``enable`` only, inside Picard.

Picard's own machinery does every part it has: the action is a ``BaseAction`` on the
context menus of files, tracks, albums and clusters; the scan runs on Picard's thread
pool (``picard.util.thread.run_task``, as official plugins run their external
commands) and each file's outcome comes back to the GUI thread (``thread.to_main``) as
genre-tagger finishes it; the genres go to the file's ``genre`` (and its track's), so
the user sees old -> new in Picard's metadata box and saves with Picard, which does the
writing; ``~genre_confidence`` (``%_genre_confidence%`` in scripts) is hidden, never
written to a file.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import partial

from PyQt6 import QtWidgets

from picard.plugin3.api import BaseAction, OptionsPage, PluginApi
from picard.util import thread

from .command import (
    FAILED, KEPT, POLICIES, TAGGED, UNCERTAIN, CommandError, Outcome, Settings, check_version, find_command,
    percent, plan_genres, run_scan, summary_line,
)

TITLE = "Genre from the audio (genre-tagger)"
CONFIDENCE_VARIABLE = "~genre_confidence"
DEFAULTS = Settings()
OPTIONS = {  # plugin_config key -> default
    "command": DEFAULTS.command,
    "models_dir": DEFAULTS.models_dir,
    "model": DEFAULTS.model,
    "min_confidence": DEFAULTS.min_confidence,
    "max_genres": DEFAULTS.max_genres,
    "policy": DEFAULTS.policy,
}
POLICY_WORDS = {
    "keep": "keep it (tag only tracks without a genre)",
    "overwrite": "replace it",
    "append": "add the new genres after it",
}

#: runs under way (their scans), for ``busy()``
_running: set["Run"] = set()


def busy() -> bool:
    """Whether a run is still under way (the tests wait on it)."""
    return bool(_running)


def settings_of(api: PluginApi) -> Settings:
    """The options page's settings, each checked (a value out of range: its default)."""
    config = api.plugin_config

    def get(key, kind):
        try:  # (the registered default when never set)
            return kind(config[key])
        except (KeyError, TypeError, ValueError):
            return OPTIONS[key]

    policy = get("policy", str)
    return Settings(
        command=get("command", str), models_dir=get("models_dir", str), model=get("model", str),
        min_confidence=min(max(get("min_confidence", float), 0.0), 1.0),
        max_genres=min(max(get("max_genres", int), 1), 5),
        policy=policy if policy in POLICIES else DEFAULTS.policy,
    )


def selected_files(objs) -> list:
    """The files of the selected files, tracks, albums and clusters, each once, in order."""
    files, seen = [], set()
    for obj in objs:
        for file in obj.iterfiles():
            if id(file) not in seen:
                seen.add(id(file))
                files.append(file)
    return files


class Run:
    """One click of the action: the files, the scan on Picard's thread pool, and each
    outcome applied on the GUI thread as it comes."""

    def __init__(self, api: PluginApi, files: list):
        self.api = api
        self.tagger = api.tagger
        self.settings = settings_of(api)
        self.by_path: dict[str, list] = {}
        for file in files:
            self.by_path.setdefault(file.filename, []).append(file)
        self.total = len(self.by_path)
        self.done = 0
        self.counts: Counter = Counter()

    def status(self, message: str, timeout: int = 0) -> None:
        window = getattr(self.tagger, "window", None)
        if window is not None:
            window.set_statusbar_message(message, echo=None, translate=None, history=None, timeout=timeout)

    def start(self) -> None:
        if not self.by_path:
            self.status("genre-tagger: no files selected", 5000)
            return
        _running.add(self)
        self.status(f"genre-tagger: listening to {self.total} file{'s' if self.total != 1 else ''}…")
        thread.run_task(self.work, self.finished, traceback=False)

    # ---------------------------------------------------------- on Picard's thread pool

    def work(self) -> None:
        command = find_command(self.settings.command)
        version = check_version(command)
        self.api.logger.info("genre-tagger %s (%s): %d file(s), model %s, threshold %s, up to %d genre(s), "
                             "policy %s", version, command, self.total, self.settings.model or "the default",
                             f"{self.settings.min_confidence:g}" if self.settings.min_confidence else "the model's own",
                             self.settings.max_genres, self.settings.policy)
        run_scan(command, list(self.by_path), self.settings, lambda outcome: thread.to_main(self.apply, outcome))

    # ---------------------------------------------------------- on the GUI thread

    def apply(self, outcome: Outcome) -> None:
        """One file's outcome: its metadata set (a tagged track), or the reason logged."""
        self.done += 1
        step = f"[{self.done}/{self.total}] "
        try:
            status = self._apply(outcome, step)
        except Exception as error:  # a bug or an odd file fails that file alone
            status = FAILED
            self.api.logger.error("%sfailed %s: could not be set, an error of the plugin (%s: %s); please report it",
                                  step, outcome.path, type(error).__name__, error)
        self.counts[status] += 1
        self.status(f"genre-tagger: {self.done}/{self.total} files ({self.counts[TAGGED]} tagged)…")

    def _apply(self, outcome: Outcome, step: str) -> str:
        path = outcome.path
        if outcome.status == FAILED:
            self.api.logger.warning("%sfailed %s: %s", step, path, outcome.note)
            return FAILED
        if outcome.status == UNCERTAIN:
            self.api.logger.info("%suncertain %s: %s", step, path, outcome.note)
            return UNCERTAIN
        status = KEPT
        for file in self.by_path.get(path, []):
            now = file.metadata.getall("genre")
            planned = plan_genres(now, outcome.genres, self.settings.policy)
            said = f"{'; '.join(outcome.genres)}{percent(outcome.confidence)}"
            if planned is None:
                self.api.logger.info("%skept %s: already tagged %s, kept (policy %s); the model says %s",
                                     step, path, "; ".join(now), self.settings.policy, said)
                continue
            self.api.logger.info("%stagged %s: %s -> %s%s", step, path, "; ".join(now) or "(none)",
                                 "; ".join(planned), percent(outcome.confidence))
            self._set(file, planned, outcome.confidence)
            status = TAGGED
        return status

    @staticmethod
    def _set(file, genres: list[str], confidence: float | None) -> None:
        """The genres and the confidence in the file's metadata and, when it is matched to a
        track, the track's (which Picard copies into the file again when it refreshes)."""
        holders = [file]
        track = getattr(file, "parent_item", None)
        if track is not None and hasattr(track, "num_linked_files"):  # a Track, not a Cluster
            holders.append(track)
        for holder in holders:
            holder.metadata["genre"] = list(genres)
            if confidence is not None:
                holder.metadata[CONFIDENCE_VARIABLE] = f"{confidence:.4f}"
            else:
                holder.metadata.delete(CONFIDENCE_VARIABLE)
        file.update()
        if len(holders) > 1:
            holders[1].update()

    def finished(self, result=None, error=None) -> None:
        _running.discard(self)
        if error is not None:
            if isinstance(error, CommandError):
                message = f"genre-tagger: {error}"
            else:
                message = (f"genre-tagger: the plugin stopped on an error ({type(error).__name__}: {error}); "
                           "please report it")
            self.api.logger.error(message)
            self.status(message)
            return
        line = summary_line(self.counts)
        self.api.logger.info(line)
        self.status(line, 30000)


class GenreFromAudio(BaseAction):
    """The context-menu action on files, tracks, albums and clusters."""

    TITLE = TITLE

    def callback(self, objs):
        Run(self.api, selected_files(objs)).start()


class GenreTaggerOptionsPage(OptionsPage):
    """Options > Plugins > genre-tagger."""

    NAME = "genre_tagger"
    TITLE = "genre-tagger"
    PARENT = "plugins"

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel(
            "Tags the genre by listening to the audio, with the genre-tagger command. Select files, tracks or "
            f"albums, then right-click: <b>{TITLE}</b>. Picard shows the new genre; save to write it. "
            "Uncertain tracks keep their genre; the log says why.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QtWidgets.QFormLayout()
        layout.addLayout(form)

        self.command = QtWidgets.QLineEdit()
        self.command.setPlaceholderText("genre-tagger on PATH")
        self._row(form, "Command:", self._with_browse(self.command, self._browse_command), "the genre-tagger command")
        self.models_dir = QtWidgets.QLineEdit()
        self.models_dir.setPlaceholderText("genre-tagger's default (its pretrained models)")
        self._row(form, "Models folder:", self._with_browse(self.models_dir, self._browse_models), "scan --models-dir")
        self.model = QtWidgets.QLineEdit()
        self.model.setPlaceholderText("the default model")
        self._row(form, "Model:", self.model, "scan --model")
        self.min_confidence = QtWidgets.QDoubleSpinBox()
        self.min_confidence.setRange(0.0, 1.0)
        self.min_confidence.setSingleStep(0.05)
        self.min_confidence.setDecimals(2)
        self.min_confidence.setSpecialValueText("the model's own")
        self._row(form, "Threshold:", self.min_confidence, "scan --min-confidence")
        self.max_genres = QtWidgets.QSpinBox()
        self.max_genres.setRange(1, 5)
        self._row(form, "Up to N genres:", self.max_genres, "scan --genres")
        self.policy = QtWidgets.QComboBox()
        for policy in POLICIES:
            self.policy.addItem(f"{policy}: {POLICY_WORDS[policy]}", policy)
        self._row(form, "Has a genre:", self.policy, "scan --policy: a track that has a genre in Picard already")

        check = QtWidgets.QPushButton("Check the command")
        check.clicked.connect(self._check)
        self.check_result = QtWidgets.QLabel("")
        self.check_result.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(check)
        row.addWidget(self.check_result, 1)
        layout.addLayout(row)
        layout.addStretch(1)

    @staticmethod
    def _row(form: QtWidgets.QFormLayout, label: str, field: QtWidgets.QWidget, tip: str) -> None:
        shown = QtWidgets.QLabel(label)
        shown.setWordWrap(False)
        shown.setToolTip(tip)
        field.setToolTip(tip)
        form.addRow(shown, field)

    @staticmethod
    def _with_browse(edit: QtWidgets.QLineEdit, browse) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QtWidgets.QPushButton("Browse…")
        button.clicked.connect(browse)
        row.addWidget(button)
        return box

    def _browse_command(self):
        path, _unused = QtWidgets.QFileDialog.getOpenFileName(self, "The genre-tagger command",
                                                              os.path.dirname(self.command.text()))
        if path:
            self.command.setText(path)

    def _browse_models(self):
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of model bundles", self.models_dir.text())
        if path:
            self.models_dir.setText(path)

    def _check(self):
        """Find the command and ask its version, off the GUI thread."""
        configured = self.command.text()
        self.check_result.setText("checking…")

        def work():
            command = find_command(configured)
            return f"genre-tagger {check_version(command)} at {command}: ready"

        def shown(result=None, error=None):
            if not self.deleted:
                self.check_result.setText(result if error is None else str(error))

        thread.run_task(work, shown, traceback=False)

    def load(self):
        settings = settings_of(self.api)
        self.command.setText(settings.command)
        self.models_dir.setText(settings.models_dir)
        self.model.setText(settings.model)
        self.min_confidence.setValue(settings.min_confidence)
        self.max_genres.setValue(settings.max_genres)
        self.policy.setCurrentIndex(max(self.policy.findData(settings.policy), 0))

    def save(self):
        config = self.api.plugin_config
        config["command"] = self.command.text().strip()
        config["models_dir"] = self.models_dir.text().strip()
        config["model"] = self.model.text().strip()
        config["min_confidence"] = round(self.min_confidence.value(), 2)
        config["max_genres"] = self.max_genres.value()
        config["policy"] = self.policy.currentData()


def enable(api: PluginApi) -> None:
    for key, default in OPTIONS.items():
        api.plugin_config.register_option(key, default)
    api.register_script_variable(
        "_genre_confidence",
        documentation="genre-tagger's confidence in the genre it set (0 to 1: the probability that it is right, "
                      "as the model calibrated it). Hidden: never written to a file.")
    for register in (api.register_file_action, api.register_track_action, api.register_album_action,
                     api.register_cluster_action):
        register(GenreFromAudio)
    api.register_options_page(GenreTaggerOptionsPage)
