"""Scanning a library: predict each track's genre and, when asked, tag it.

Files -> audio -> segments -> features (worker processes) -> probabilities -> vote
(this process) -> tags/report. Results are cached per file, so an interrupted scan
resumes where it stopped and a second scan of an unchanged library reads only the cache.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from genre_tagger.models.assessment import NOT_MUSIC, OUTSIDE, Assessment
from genre_tagger.models.predicting import FilePrediction, predict_files
from genre_tagger.models.predictor import UNKNOWN, Predictor, TrackPrediction
from genre_tagger.models.voting import Vote
from genre_tagger.pipeline import cache as cache_module
from genre_tagger.pipeline.analysis import SILENT_NOTE, selection_name
from genre_tagger.pipeline.stopping import never
from genre_tagger.segments import DEFAULT_MAX_SEGMENTS
from genre_tagger.tagging.journal import Journal, JournalError, tag_file
from genre_tagger.tagging.library import StaleTemporaries
from genre_tagger.tagging.tags import DEFAULT_GENRE_NAMES, FileStamp, TagError, UnsafeTagError, read_genres, stamp


# Statuses in the report
TAGGED, WOULD_TAG, KEPT, UNCERTAIN, FAILED = "tagged", "would tag", "kept", "uncertain", "failed"
INTERRUPTED = "interrupted"  # a stopped scan never reached the file

# Reasons in the report, machine-readable: why a file is not (or would not be) tagged;
# "" when it is. An uncertain file's is the assessment's (LOW_CONFIDENCE, OUTSIDE,
# NOT_MUSIC) or SILENT.
SILENT = "silent"
HAS_GENRE = "has-genre"  # kept: the file has a genre and --policy keep keeps it
UNCHANGED = "unchanged"  # kept: it holds the genres already (--policy overwrite or append)
UNSAFE_TAGS = "unsafe-tags"  # kept: its tags cannot be rewritten without losing metadata
UNREADABLE = "unreadable"  # failed: not analysed (not audio, damaged, gone, too short, ...)
NOT_WRITTEN = "not-written"  # failed: analysed, but its tags could not be read, written or journalled
BUG = "internal-error"  # failed: an error of genre-tagger itself


@dataclass
class ScanOptions:
    """What to do with each track (the ``scan`` command's options)."""

    max_segments: int | None = DEFAULT_MAX_SEGMENTS
    min_confidence: float | None = None  # None: the model's own threshold (see models.assessment)
    write: bool = False
    policy: str = "keep"  # keep | overwrite | append an existing genre
    id3_version: int = 4
    id3_join: str = "; "
    genre_names: dict[str, str] = field(default_factory=dict)  # class -> tag value, over the model's own (see tag_names)
    jobs: int = 1
    vote: str = "majority"  # or "soft": the class of highest mean probability
    genres: int = 1  # at most this many genres per track (see TrackPrediction.genres)
    genre_margin: float = 0.15  # ... each within this mean probability of the winner's
    cluster: str | None = None  # a Dask scheduler address, or "local": analyse there (see genre_tagger.pipeline.cluster)

    def cache_settings(self) -> str:
        return selection_name(self.max_segments)


@dataclass
class TrackResult:
    """One file's outcome: a row of the report, a line of ``--json``.

    ``genre`` is the genre as it is (or would be) tagged (``unknown`` when uncertain),
    ``label`` the class the model voted for (``hiphop`` for ``Hip-Hop``), ``genres`` every
    genre chosen for the track (``--genres N``), ``current`` the genres the file held
    when scanned and ``written`` what it holds after the tag policy (``[]`` when
    nothing is or would be written). ``error`` says why a file failed, was kept or is
    uncertain.
    """

    path: str
    genre: str = ""
    label: str = ""
    confidence: float | None = None
    top3: str = ""
    segments: int | None = None
    model: str = ""
    duration_s: float | None = None
    status: str = ""
    genres: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    error: str = ""
    reason: str = ""  # why it is not tagged, machine-readable (see SILENT and the others above)

    def as_row(self) -> dict:
        return asdict(self)


@dataclass
class ScanSummary:
    """What a scan did: one result per file (``interrupted`` for the files a stopped scan
    never reached), the folders and files the walk skipped, and why it stopped early
    (``stopped``: the signal, or a journal that could not be written), if it did."""

    results: list[TrackResult]
    walk_errors: list[str]
    seconds: float
    from_cache: int = 0
    stopped: str | None = None

    @property
    def failed(self) -> list[TrackResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def interrupted(self) -> int:
        """Files a stopped scan never finished (not reached, or abandoned by a second signal)."""
        return sum(r.status == INTERRUPTED for r in self.results)

    @property
    def analysed(self) -> int:
        """Files not answered by the cache that the scan finished: analysed, or failed trying."""
        return len(self.results) - self.from_cache - self.interrupted

    def genre_counts(self) -> Counter:
        """The genres tagged, to be tagged or ``unknown`` (uncertain): a failed or interrupted
        file has none, and a kept file keeps its own genre, whatever the model said of it."""
        return Counter(r.genre for r in self.results if r.status not in (FAILED, INTERRUPTED, KEPT))

    def status_counts(self) -> Counter:
        return Counter(r.status for r in self.results)


@dataclass
class Judgement:
    """What scan's rules make of one track's prediction: the vote, the model's assessment
    (calibrated confidence; ``reason`` when the track is not to be tagged) and the classes
    to tag (``[]`` when not to be tagged)."""

    vote: Vote
    assessment: Assessment
    labels: list[str]

    @property
    def uncertain_note(self) -> str | None:
        """Why the track is not tagged, in words; ``None`` when it is to be tagged."""
        return None if self.assessment.reason is None else uncertain_note(self.assessment, self.vote.genre)


def judge(prediction: TrackPrediction, predictor: Predictor, vote: str = "majority",
          min_confidence: float | None = None, count: int = 1, margin: float = 0.15) -> Judgement:
    """The vote (``vote``), the assessment against ``min_confidence`` (``None``: the
    model's own threshold) and, when the track is to be tagged, up to ``count`` genres
    within ``margin`` of the first (see :meth:`TrackPrediction.genres`)."""
    decision = prediction.decide(vote)
    assessment = prediction.assess(predictor, decision, min_confidence)
    labels = [] if assessment.reason is not None else prediction.genres(predictor, decision, count, margin,
                                                                         min_confidence)
    return Judgement(decision, assessment, labels)


def carry_cache_forward(cache: cache_module.Cache, path: Path, old_key: tuple) -> None:
    """After a tag write: only the tags changed, not the audio, so every cached entry of
    ``path`` holds for its new stamp (neither scan nor evaluate analyses it again)."""
    try:
        new_key = cache_module.file_key(path)
    except OSError:
        return
    cache.restamp(old_key, new_key)


def uncertain_note(assessment: Assessment, genre: str) -> str:
    """Why a track is not tagged, in words."""
    if assessment.reason == NOT_MUSIC:
        return "not music, by its sound (noise, tones, clicks or speech): not tagged"
    if assessment.reason == OUTSIDE:
        return f"unlike every genre the model knows (it would have said {genre}): not tagged"
    return f"{genre} only {assessment.confidence:.0%} likely, below the threshold: not tagged"


def tag_names(predictor: Predictor, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The tag value of each class: :data:`DEFAULT_GENRE_NAMES`, then the model's own (a
    model trained on a user's genres spells them as its owner does), then ``overrides``
    (``--genre-name``)."""
    own = (getattr(predictor, "training", None) or {}).get("genre_names", {})
    return {**DEFAULT_GENRE_NAMES, **own, **(overrides or {})}


def _current_genres(path: Path) -> list[str] | None:
    """The genres ``path`` holds now; ``None`` when they cannot be read (a file to be
    tagged then fails, saying why)."""
    try:
        return read_genres(path)
    except TagError:
        return None


def _journal_failure(prediction: FilePrediction, error: JournalError) -> str:
    """The line of a file whose write could not be journalled: whether it was tagged (the
    journal failed after the write) is told by its stamp, changed or not since analysed."""
    try:
        changed = prediction.key is not None and stamp(prediction.path) != FileStamp(*prediction.key[1:])
    except OSError:
        changed = False
    return f"{prediction.path}: {error}" if changed else f"{prediction.path}: not tagged: {error}"


def format_top(top: list) -> str:
    return "; ".join(f"{genre}:{share:.2f}" for genre, share in top)


class Scanner:
    """Scans files with one predictor; reports each finished track through ``on_result``."""

    def __init__(
        self,
        predictor: Predictor,
        options: ScanOptions,
        cache: cache_module.Cache,
        journal: Journal | None = None,
        on_result: Callable[[TrackResult, bool], None] | None = None,
    ):
        if options.write and journal is None:
            raise ValueError("writing tags needs a journal")
        self.predictor = predictor
        self.options = options
        self.cache = cache
        self.journal = journal
        self.on_result = on_result or (lambda result, cached: None)
        self.model_key = cache_module.model_key(predictor.name, predictor.checksum)
        self.names = tag_names(predictor, options.genre_names)

    def scan(self, files: Iterable[Path], walk_errors: list[str] | None = None,
             stop: Callable[[], bool] = never) -> ScanSummary:
        """Predict (and with ``options.write`` tag) each of ``files``; one result per file.

        A file that cannot be read, decoded, analysed or tagged gets a ``failed`` result
        whose ``error`` names it and the cause; the scan goes on with the others. A
        silent track gets ``uncertain`` / ``unknown`` and is not tagged. With
        ``options.write``, stale temporary files that an interrupted tag write left
        beside a file (see :class:`genre_tagger.tagging.library.StaleTemporaries`) are removed.

        Once ``stop()`` is true, or the journal cannot be written, no file is started: those
        in flight are finished (and cached), a tag write is never cut short, and the files
        not reached are ``interrupted``.
        """
        started = time.perf_counter()
        files = list(files)
        results: list[TrackResult] = []
        from_cache = 0
        stopped: list[str] = []
        clean_up = StaleTemporaries() if self.options.write else None

        def paths() -> Iterator[Path]:
            for path in files:
                if clean_up is not None:
                    clean_up.remove(path)
                yield path

        predictions = predict_files(
            self.predictor, paths(), self.cache, max_segments=self.options.max_segments, jobs=self.options.jobs,
            cluster=self.options.cluster, stop=lambda: bool(stopped) or stop(),
        )
        for prediction in predictions:
            from_cache += prediction.cached
            try:
                result = self._result(prediction)
            except JournalError as error:  # no write can be journalled any more: stop writing
                stopped.append(str(error))
                result = self._failed(prediction.path, _journal_failure(prediction, error), NOT_WRITTEN)
            results.append(self._report(result, cached=prediction.cached))
        done = {result.path for result in results}
        results += [TrackResult(str(path), model=self.predictor.name, status=INTERRUPTED, reason=INTERRUPTED,
                                error=f"{path}: not scanned: the scan was stopped before it") for path in files
                    if str(path) not in done]
        results.sort(key=lambda r: r.path)
        reason = stopped[0] if stopped else ("stopped" if stop() else None)
        return ScanSummary(results, list(walk_errors or []), time.perf_counter() - started, from_cache, reason)

    def _result(self, prediction: FilePrediction) -> TrackResult:
        if prediction.error:
            return self._failed(prediction.path, prediction.error)
        if prediction.prediction.silent:
            return self._silent(prediction.path, prediction.prediction)
        try:
            return self._finish(prediction.path, prediction.key, prediction.prediction)
        except JournalError:
            raise
        except Exception as error:  # a bug or an odd file must not end the whole scan
            return self._failed(prediction.path, f"{prediction.path}: could not be tagged, an error of genre-tagger "
                                                 f"({type(error).__name__}: {error}); please report it", BUG)

    def _report(self, result: TrackResult, cached: bool) -> TrackResult:
        self.on_result(result, cached)
        return result

    def _failed(self, path: Path, error: str, reason: str = UNREADABLE) -> TrackResult:
        """A ``failed`` result; ``error`` is made one line (the report has one row per file)."""
        error = " ".join(str(error).split("\n"))
        return TrackResult(str(path), model=self.predictor.name, status=FAILED, reason=reason,
                           error=error.replace("\r", " "))

    def _silent(self, path: Path, prediction: TrackPrediction) -> TrackResult:
        """The result of a silent track: no genre to judge, so ``unknown``, never tagged."""
        return TrackResult(
            str(path), genre=UNKNOWN, segments=prediction.segments, model=self.predictor.name,
            duration_s=prediction.duration_s, status=UNCERTAIN, reason=SILENT, error=f"{path}: {SILENT_NOTE}",
        )

    def _finish(self, path: Path, key: tuple, prediction: TrackPrediction) -> TrackResult:
        """Apply the vote, the model's assessment (calibrated confidence, novelty), the
        confidence threshold and the tag policy to a prediction."""
        judgement = judge(prediction, self.predictor, self.options.vote, self.options.min_confidence,
                          self.options.genres, self.options.genre_margin)
        decision, assessment, names = judgement.vote, judgement.assessment, self.names
        genres_now = _current_genres(path)
        result = TrackResult(
            str(path),
            genre=names.get(decision.genre, decision.genre),
            label=decision.genre,
            confidence=round(assessment.confidence, 4),
            top3=format_top(decision.top),
            segments=prediction.segments,
            model=self.predictor.name,
            duration_s=prediction.duration_s,
            current=genres_now or [],
        )
        if judgement.uncertain_note is not None:
            result.genre, result.status, result.error = UNKNOWN, UNCERTAIN, f"{path}: {judgement.uncertain_note}"
            result.reason = assessment.reason
            return result
        result.genres = [names.get(label, label) for label in judgement.labels]
        expect = FileStamp(*(prediction.stamp or key[1:]))
        try:
            written = tag_file(
                self.journal,
                path,
                result.genres,
                policy=self.options.policy,
                id3_version=self.options.id3_version,
                id3_join=self.options.id3_join,
                expect=expect,
                dry_run=not self.options.write,
                existing=genres_now,
            )
        except UnsafeTagError as error:  # left as it is, and the report says why
            result.status, result.reason, result.error = KEPT, UNSAFE_TAGS, str(error)
            return result
        except TagError as error:
            result.status, result.reason, result.error = FAILED, NOT_WRITTEN, str(error)
            return result
        result.written = written or []
        if written is None:
            result.status, result.reason = KEPT, HAS_GENRE if self.options.policy == "keep" else UNCHANGED
            held = "; ".join(result.current)
            result.error = (f"{path}: already tagged {held}, kept (--policy keep)" if result.reason == HAS_GENRE else
                            f"{path}: already tagged {held}, nothing to change (--policy {self.options.policy})")
        elif self.options.write:
            result.status = TAGGED
            carry_cache_forward(self.cache, path, key)
        else:
            result.status = WOULD_TAG
        return result
