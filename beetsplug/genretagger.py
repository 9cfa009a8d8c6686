"""genretagger: a beets plugin that tags a beets library with genre-tagger's engine.

Enabled with ``plugins: genretagger`` in beets' configuration
(``pip install 'genre-tagger[beets]'``). A thin shell over the ``genre_tagger`` library;
what it does, and where each part comes from:

- ``beet genretag [-p] [-f] [QUERY]`` (:meth:`GenreTaggerPlugin.commands`): the items
  matching ``QUERY`` are predicted by :func:`genre_tagger.models.predicting.predict_files`
  with the model :func:`genre_tagger.models.catalogue.choose` picks (``model``,
  ``models_dir``), exactly as ``genre-tagger scan`` does: the same cache, the same keys
  (path, size, mtime; model checksum; segment selection), so a file ``scan`` analysed is
  served from the cache and the other way round.
- Each prediction is judged by scan's own rules (:func:`genre_tagger.tagging.scan.judge`,
  in :func:`verdict_of`): nothing of the voting, the
  calibrated confidence, the novelty test or the multi-genre choice is redone here, and
  classes get the tag values ``scan`` gives them (``scan.tag_names``: the defaults, the
  model's own, then ``genre_names``). A silent, uncertain or failed track is never
  tagged; one log line says why.
- The genres go to beets' ``genres`` field (a list, beets 2.7 and later) or, in older
  beets, to its ``genre`` string joined by ``separator`` (:func:`genre_field`); the
  calibrated confidence to the flexible attribute ``genre_confidence``. What to do with an
  item that has a genre already is :func:`genre_tagger.tagging.tags.plan_genres`'s
  ``policy``, as ``scan --policy``: ``keep`` (default), ``overwrite`` (``-f``), ``append``.
- Files are written the beets way, with ``item.try_write()``, only when beets' own
  ``import.write`` allows it (:func:`beets.ui.should_write`, or the import session's
  ``write``); otherwise only the library database changes. ``-p`` changes neither (the
  cache still learns the predictions: it is not the library).
- With ``auto: yes``, tracks are tagged as they are imported (:meth:`GenreTaggerPlugin.imported`,
  on beets' ``import_task_files`` event: after the files were copied or moved, so the
  paths analysed, and cached, are the library's own).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from beets import ui
from beets.dbcore import types
from beets.library import Item
from beets.plugins import BeetsPlugin

from genre_tagger.models import catalogue
from genre_tagger.models.bundle import BundleError
from genre_tagger.models.predicting import FilePrediction, predict_files
from genre_tagger.models.predictor import Predictor
from genre_tagger.models.voting import VOTES
from genre_tagger.pipeline import cache as cache_module
from genre_tagger.pipeline.analysis import SILENT_NOTE
from genre_tagger.plugins import registry
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS
from genre_tagger.tagging.scan import (
    FAILED, KEPT, TAGGED, UNCERTAIN, WOULD_TAG, carry_cache_forward, judge, tag_names,
)
from genre_tagger.tagging.tags import POLICIES, plan_genres

if TYPE_CHECKING:
    import optparse

    from beets.importer import ImportSession, ImportTask
    from beets.library import Library

CONFIDENCE_FIELD = "genre_confidence"


def genre_field() -> str:
    """The item field genres go to: ``genres`` (a list) where the installed beets has it
    (2.7 and later, which dropped the single ``genre`` string), else ``genre``."""
    return "genres" if "genres" in Item._fields else "genre"


def current_genres(item: Item, separator: str) -> list[str]:
    """The genres ``item`` holds in the library (its own, not its album's)."""
    value = item.get(genre_field(), with_album=False)
    if not value:
        return []
    parts = value if isinstance(value, list) else str(value).split(separator.strip() or separator)
    return [part.strip() for part in parts if part.strip()]


def set_genres(item: Item, genres: list[str], separator: str) -> None:
    """Put ``genres`` in ``item``'s genre field: as a list, or one string in older beets."""
    name = genre_field()
    item[name] = list(genres) if name == "genres" else separator.join(genres)


@dataclass
class Settings:
    """The plugin's configuration, read and checked once per run."""

    model: str | None
    models_dir: str | None
    min_confidence: float | None
    max_segments: int | None  # None: every segment
    jobs: int
    vote: str
    policy: str
    count: int
    genre_margin: float
    separator: str
    genre_names: dict[str, str]  # class -> tag value, over the defaults and the model's own (scan.tag_names)
    cache: str | None  # the cache database; None: no cache


@dataclass
class Verdict:
    """What genre-tagger says of one file: the genres to tag (display names, ``[]`` when
    not to be tagged), their confidence, and ``note``, why the file is not tagged."""

    status: str  # TAGGED (to be tagged), UNCERTAIN or FAILED
    genres: list[str] = field(default_factory=list)
    confidence: float | None = None
    note: str = ""


def verdict_of(prediction: FilePrediction, predictor: Predictor, settings: Settings, names: dict[str, str]) -> Verdict:
    """The verdict on one prediction, by scan's rules (:func:`genre_tagger.tagging.scan.judge`),
    each class tagged as ``names`` (:func:`genre_tagger.tagging.scan.tag_names`) spells it."""
    if prediction.error:  # one line, as scan's report has it
        return Verdict(FAILED, note=prediction.error.replace("\n", " ").replace("\r", " "))
    track = prediction.prediction
    if track.silent:
        return Verdict(UNCERTAIN, note=SILENT_NOTE)
    judgement = judge(track, predictor, settings.vote, settings.min_confidence, settings.count, settings.genre_margin)
    confidence = round(judgement.assessment.confidence, 4)
    if judgement.uncertain_note is not None:
        return Verdict(UNCERTAIN, confidence=confidence, note=judgement.uncertain_note)
    return Verdict(TAGGED, [names.get(label, label) for label in judgement.labels], confidence)


def _item_path(item: Item) -> Path:
    return Path(os.fsdecode(item.path))


class GenreTaggerPlugin(BeetsPlugin):
    """``beet genretag`` and, with ``auto``, tagging on import."""

    # typed, so that genre_confidence:0.8.. compares numbers; shown with two decimals
    item_types = {CONFIDENCE_FIELD: types.Float(2)}

    def __init__(self) -> None:
        super().__init__()
        self.config.add({
            "auto": True,
            "model": None,
            "models_dir": None,
            "min_confidence": None,
            "max_segments": DEFAULT_MAX_SEGMENTS,
            "jobs": 1,
            "vote": "majority",
            "policy": "keep",
            "count": 1,
            "genre_margin": 0.15,
            "separator": "; ",
            "genre_names": {},
            "cache": True,
        })
        # made once, then reused by every import task; _predictor_for: the (model, models_dir) it is
        self._predictor: Predictor | None = None
        self._predictor_for: tuple[str | None, str | None] | None = None
        if self.config["auto"].get(bool):
            self.register_listener("import_task_files", self.imported)

    # ------------------------------------------------------------------ beets' hooks

    def commands(self) -> list[ui.Subcommand]:
        command = ui.Subcommand("genretag", help="tag genres by listening to the audio (genre-tagger)")
        command.parser.add_option("-p", "--pretend", action="store_true", default=False,
                                  help="show what would be set, change nothing")
        command.parser.add_option("-f", "--force", action="store_true", default=False,
                                  help="replace an existing genre (policy overwrite)")
        command.func = self.command
        return [command]

    def command(self, lib: Library, opts: optparse.Values, args: list[str]) -> None:
        """``beet genretag [-p] [-f] [QUERY]``: a configuration or model that cannot be
        used is a :class:`beets.ui.UserError`, said before any file is read."""
        settings = self.settings(policy="overwrite" if opts.force else None)
        predictor = self.predictor(settings)
        items = list(lib.items(args))
        self.tag(items, predictor, settings, pretend=opts.pretend, write=ui.should_write())

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """``auto``: tag the tracks of an import task once beets has put their files in
        place (and written the tags it writes). A model that cannot be used is said, and
        the import goes on untagged: importing is the import's own job."""
        try:
            settings = self.settings()
            predictor = self.predictor(settings)
            self.tag(task.imported_items(), predictor, settings, pretend=False, write=session.config["write"].get(bool))
        except ui.UserError as error:  # (the model is made, and the cache opened, at first use)
            self._log.error("not tagging imported tracks: {}", error)

    # ------------------------------------------------------------------ configuration

    def settings(self, policy: str | None = None) -> Settings:
        """The configuration, checked (:class:`beets.ui.UserError` saying what is wrong);
        ``policy`` overrides the configured one (``-f``)."""
        config = self.config
        min_confidence = config["min_confidence"].get()
        if min_confidence is not None:
            min_confidence = config["min_confidence"].as_number()
            if not 0 <= min_confidence <= 1:
                raise ui.UserError(f"genretagger.min_confidence: {min_confidence} is not between 0 and 1")
        count, max_segments, jobs = (config[key].get(int) for key in ("count", "max_segments", "jobs"))
        if count < 1 or max_segments < 0 or jobs < 1:
            raise ui.UserError("genretagger: count and jobs must be at least 1, max_segments at least 0 (0: all)")
        names = {}
        for label, shown in (config["genre_names"].get(dict) or {}).items():
            if not str(label).strip() or not str(shown or "").strip():
                raise ui.UserError(f"genretagger.genre_names: {label!r}: {shown!r}: "
                                   "a class and its name, neither blank")
            names[str(label).strip().lower()] = str(shown).strip()  # classes are lower case, as scan's --genre-name
        model, models_dir = config["model"].get(), config["models_dir"].get()
        return Settings(
            model=str(model) if model else None,
            models_dir=os.path.expanduser(str(models_dir)) if models_dir else None,
            min_confidence=min_confidence,
            max_segments=max_segments or None,  # as scan's --max-segments 0: all
            jobs=jobs,
            vote=config["vote"].as_choice(VOTES),
            policy=policy or config["policy"].as_choice(POLICIES),
            count=count,
            genre_margin=float(config["genre_margin"].as_number()),
            separator=config["separator"].as_str(),
            genre_names=names,
            cache=self._cache_path(config["cache"].get()),
        )

    @staticmethod
    def _cache_path(value: Any) -> str | None:
        """``cache``: yes (genre-tagger's own cache, shared with ``scan``), no, or a path."""
        if value is False:
            return None
        if value is True or value is None:
            return str(cache_module.default_path())
        return os.path.expanduser(str(value))

    def predictor(self, settings: Settings) -> Predictor:
        """The model asked for, loaded once per plugin (an import reuses it task after task)."""
        wanted = (settings.model, settings.models_dir)
        if self._predictor is None or self._predictor_for != wanted:
            try:
                (self._predictor,) = catalogue.choose(settings.model, settings.models_dir, registry())
            except BundleError as error:
                raise ui.UserError(f"genretagger: {error}") from None
            self._predictor_for = wanted
        return self._predictor

    # ------------------------------------------------------------------ tagging

    def tag(self, items: Iterable[Item], predictor: Predictor, settings: Settings, *, pretend: bool,
            write: bool) -> Counter:
        """Predict, judge and (unless ``pretend``) set the genre of each of ``items``, each as
        its prediction arrives; ``write`` also writes the file. Returns the statuses counted.

        One log line per item, and a summary: at info level, which beets shows for a
        command and, during an import (where beets lowers its plugins' logs to warnings),
        with ``beet -v import``; a file that failed is a warning, always shown."""
        by_path: dict[Path, list[Item]] = {}
        counts: Counter = Counter()
        sources: Counter = Counter()
        for item in items:
            if settings.policy == "keep" and current_genres(item, settings.separator):
                # kept whatever the model would say: not worth decoding (as lastgenre, -f to replace)
                self._log.info("kept {}: already tagged {} (policy keep; -f replaces it)", _item_path(item),
                               "; ".join(current_genres(item, settings.separator)))
                counts[KEPT] += 1
            else:
                by_path.setdefault(_item_path(item), []).append(item)
        total, done = len(by_path), 0
        names = tag_names(predictor, settings.genre_names)
        try:
            cache = cache_module.Cache(settings.cache)
        except cache_module.CacheError as error:
            raise ui.UserError(f"genretagger: {error}") from None
        with cache:
            try:
                predictions = predict_files(predictor, list(by_path), cache, max_segments=settings.max_segments,
                                            jobs=settings.jobs)
                for prediction in predictions:
                    sources["from cache" if prediction.cached else "analysed"] += 1
                    done += 1
                    for item in by_path[prediction.path]:
                        status = self._tag_one(item, prediction, predictor, settings, names, cache, pretend, write,
                                               f"[{done}/{total}] ")
                        counts[status] += 1
            except BundleError as error:  # the model is made on first use (see models.predicting)
                raise ui.UserError(f"genretagger: {error}") from None
        self._summary(counts, sources, predictor)
        return counts

    def _tag_one(self, item: Item, prediction: FilePrediction, predictor: Predictor, settings: Settings,
                 names: dict[str, str], cache: cache_module.Cache, pretend: bool, write: bool, step: str = "") -> str:
        """One item's status, logged after ``step`` (``[3/40] ``: how far the run is); a bug
        or an odd file fails that item alone, as in ``scan``."""
        path = prediction.path
        try:
            verdict = verdict_of(prediction, predictor, settings, names)
        except Exception as error:
            verdict = Verdict(FAILED, note=f"{path}: could not be judged, an error of genre-tagger "
                                           f"({type(error).__name__}: {error}); please report it")
        if verdict.status == FAILED:
            self._log.warning("{}failed {}", step, verdict.note)
            return FAILED
        if verdict.status == UNCERTAIN:
            self._log.info("{}uncertain {}: {}", step, path, verdict.note)
            return UNCERTAIN
        now = current_genres(item, settings.separator)
        planned = plan_genres(now, verdict.genres, settings.policy)
        said = f"{'; '.join(verdict.genres)} ({verdict.confidence:.0%})"
        if planned is None:
            self._log.info("{}kept {}: already tagged {}, kept (policy {}); the model says {}",
                           step, path, "; ".join(now), settings.policy, said)
            return KEPT
        self._log.info("{}{} {}: {} -> {} ({:.0%})", step, WOULD_TAG if pretend else TAGGED, path,
                       "; ".join(now) or "(none)", "; ".join(planned), verdict.confidence)
        if pretend:
            return WOULD_TAG
        set_genres(item, planned, settings.separator)
        item[CONFIDENCE_FIELD] = verdict.confidence
        if write:
            self._write(item, prediction, cache)
        item.store()
        return TAGGED

    @staticmethod
    def _write(item: Item, prediction: FilePrediction, cache: cache_module.Cache) -> None:
        """Write ``item``'s tags with beets' own writer, then carry the file's cache entries
        forward to its new stamp, as ``scan --write`` does: only its tags changed, not the
        audio, so neither ``scan`` nor the next ``genretag`` analyses it again. A file that
        changed since it was analysed keeps nothing of the old entry."""
        try:
            unchanged = cache_module.file_key(prediction.path) == prediction.key
        except OSError:
            unchanged = False
        if item.try_write() is not False and unchanged:  # (when False, beets logged why)
            carry_cache_forward(cache, prediction.path, prediction.key)

    def _summary(self, counts: Counter, sources: Counter, predictor: Predictor) -> None:
        statuses = ", ".join(f"{n} {status}" for status, n in counts.most_common()) or "no tracks"
        self._log.info("{} (model {}; {} from cache, {} analysed)", statuses, predictor.name,
                       sources["from cache"], sources["analysed"])

