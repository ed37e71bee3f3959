"""Many FITS files in one job: a glob, or a text file listing FITS cubes and cutout files.

    inputs = open_input_list("tiles/*.fits", psf="{dir}/{stem}_psf.fits", noise="sigma.fits")
    inputs = open_input_list("cutouts.txt")  # one file a line, optional columns of maps
    rows = inputs.rows(0, 100)               # FitRows across the files, in order

Each listed file is a cube (count, ny, nx) or one 2-d cutout; the job's rows are the files'
planes in order (a glob's matches sorted by name). Every file must share the cutout shape
and the header facts (pixel scale, zero point), as the files of a directory do.

The PSF, noise (sigma), weight and mask maps of each file come from
- the list's columns: a first line `cutouts psf noise` (cutouts, then any of psf, noise,
  weight, mask) names them; `-` is none; paths are relative to the list's directory; quote
  a path holding spaces; `#` starts a comment;
- or an option (`--psf`, ...): a naming rule with the fields `{name}` (the cutout file's
  name), `{stem}` (that name without its FITS suffix) and `{dir}` (its directory), e.g.
  `{dir}/{stem}_psf.fits`; a directory holding a file of the same name for each cutout
  file; or one file for all.
A file and its maps are paired as `open_fit_inputs` pairs one cube: one map per plane, or
one for all of the file's planes.

Headers are read, and the structure checked, when the list is opened; pixels when rows are
read, so a file that is corrupt past its header fails only the rows that read it. A file
that cannot be read at all (`UnreadableFile`: its header damaged, no image, no permission)
fails only its own rows too: as many as its cutouts' header says when only a map is
unreadable, else one row, since how many it holds is unknown. A list identifies its files
by path and row count, not modification time, so a corrupt file can be replaced and the job
rerun; a mended file that holds another number of rows than it was counted as changes the
job's rows, so that job refuses to resume: fit the mended file as a job of its own.
"""

from __future__ import annotations

import bisect
import glob
import hashlib
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from jaxgal.io.fits import (
    FITS_SUFFIXES,
    HeaderFacts,
    InputError,
    UnreadableFile,
    _check_same_facts,
    open_stack,
)
from jaxgal.io.inputs import FitInputs, FitRows, open_fit_inputs

ROLES = ("psf", "noise", "weight", "mask")
NONE = "-"


@dataclass(frozen=True)
class ListedFile:
    """One cutouts file of a list, its maps ((role, path), ...), and its rows
    start..start + count in the job; `problem`: why the file (or a map) could not be read
    when the list was opened, raised again when its rows are read."""

    cutouts: Path
    maps: tuple[tuple[str, Path], ...]
    start: int
    count: int
    problem: str | None = None

    def open(self) -> FitInputs:
        if self.problem is not None:
            raise UnreadableFile(self.problem)
        return open_fit_inputs(self.cutouts, **{role: path for role, path in self.maps})


@dataclass(frozen=True)
class ListedCutouts:
    """The cutouts of a list as a whole: where they were given (`path`: the list file or
    the glob), their `count`, cutout `shape` and header `facts`."""

    what: str
    path: Path
    count: int
    shape: tuple[int, int]
    facts: HeaderFacts


@dataclass(frozen=True)
class InputList:
    """The opened files of a glob or list, read in row ranges like `FitInputs`. `psf`,
    `noise`, `weight`, `mask`: where each map comes from, or None when there is none."""

    files: tuple[ListedFile, ...]
    cutouts: ListedCutouts
    psf: str | None = None
    noise: str | None = None
    weight: str | None = None
    mask: str | None = None

    @property
    def count(self) -> int:
        return self.cutouts.count

    def _overlapping(self, start: int, stop: int):
        """(file, first, last) for each file holding rows of start..stop, planes first..last."""
        starts = [listed.start for listed in self.files]
        index = max(bisect.bisect_right(starts, start) - 1, 0)
        for listed in self.files[index:]:
            if listed.start >= stop:
                break
            first = max(start, listed.start) - listed.start
            last = min(stop, listed.start + listed.count) - listed.start
            if last > first:
                yield listed, first, last

    def subset(self, start: int, stop: int) -> InputList:
        """Rows start..stop alone, as rows 0..stop - start (what one shard's task needs)."""
        files = tuple(
            replace(listed, start=listed.start - start)
            for listed, _, _ in self._overlapping(start, min(stop, self.count))
        )
        cutouts = replace(self.cutouts, count=min(stop, self.count) - start)
        return replace(self, files=files, cutouts=cutouts)

    def labels(self, start: int, stop: int) -> tuple[list[str], list[int]]:
        """The file and plane of each row start..stop, without reading pixels."""
        files, planes = [], []
        for listed, first, last in self._overlapping(start, min(stop, self.count)):
            files += [str(listed.cutouts)] * (last - first)
            planes += list(range(first, last))
        return files, planes

    def rows(self, start: int, stop: int) -> FitRows:
        """Read rows start..stop of every file (and their maps) and check their values."""
        pieces = []
        for listed, first, last in self._overlapping(start, min(stop, self.count)):
            rows = listed.open().rows(first, last)
            files = [str(listed.cutouts)] * (last - first)
            pieces.append(rows._replace(files=files, planes=list(range(first, last))))
        if not pieces:
            raise ValueError(f"rows {start}..{stop} are outside the {self.count} rows")
        return FitRows(*(_joined([getattr(p, f) for p in pieces]) for f in FitRows._fields))

    def unreadable(self) -> list[str]:
        """Why each file that could not be read when the list was opened fails its rows."""
        return [listed.problem for listed in self.files if listed.problem is not None]

    def describe(self) -> dict:
        """What identifies the inputs in the job's configuration: the source, the count, the
        shape and a hash of every file's paths and row count."""
        lines = [
            "\t".join([str(f.cutouts.resolve()), str(f.count)])
            + "".join(f"\t{role}={path.resolve()}" for role, path in f.maps)
            for f in self.files
        ]
        return {
            "source": str(self.cutouts.path),
            "count": self.count,
            "shape": list(self.cutouts.shape),
            "files": len(self.files),
            "files_sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        }


def _joined(values: list):
    if values[0] is None:
        return None
    if isinstance(values[0], list):
        return [item for value in values for item in value]
    return np.concatenate(values)


def is_glob(text: str) -> bool:
    """True for a glob pattern that is not itself the name of a file."""
    return glob.has_magic(text) and not Path(text).exists()


def is_input_list(path) -> bool:
    """True for an existing file that is not a FITS file by its name: a list of files."""
    path = Path(path)
    return path.is_file() and not path.name.lower().endswith(FITS_SUFFIXES)


def is_naming_rule(value) -> bool:
    return value is not None and "{" in str(value)


def open_inputs(cutouts, *, psf=None, noise=None, weight=None, mask=None):
    """`open_input_list` for a glob or a list file, else `open_fit_inputs` (a FITS cube, one
    2-d image or a directory)."""
    maps = {"psf": psf, "noise": noise, "weight": weight, "mask": mask}
    if is_glob(str(cutouts)) or is_input_list(cutouts):
        return open_input_list(cutouts, **maps)
    for role, value in maps.items():
        if is_naming_rule(value):
            raise InputError(
                f"--{role} {value}: a naming rule pairs the files of a glob or a list; give "
                f"the cutouts as a glob (for instance '{Path(cutouts) / '*.fits'}')"
            )
    return open_fit_inputs(cutouts, **maps)


def open_input_list(source, *, psf=None, noise=None, weight=None, mask=None) -> InputList:
    """Open the cutout files of a glob or a list file, with their maps (see the module)."""
    options = {"psf": psf, "noise": noise, "weight": weight, "mask": mask}
    text = str(source)
    if is_glob(text):
        matches = sorted(Path(p) for p in glob.glob(text) if _is_fits(Path(p)))
        if not matches:
            raise InputError(f"cutouts {text}: no FITS file ({', '.join(FITS_SUFFIXES)}) matches")
        entries = [(path, {}, f"{text}: {path}") for path in matches]
        columns = ()
    else:
        entries, columns = read_list_file(Path(text))
    for role in columns:
        if options[role] is not None:
            raise InputError(f"{text}: the {role} maps are a column of the list and --{role}")
    files, first = [], None
    start = 0
    for cutouts, listed_maps, where in entries:
        maps = {role: path for role, path in listed_maps.items() if path is not None}
        for role, value in options.items():
            if value is not None:
                maps[role] = _map_for(value, cutouts)
        try:
            opened = open_fit_inputs(cutouts, **maps)
        except UnreadableFile as error:  # one damaged file of many: its own rows fail
            count = _count_or_one(cutouts)
            problem = f"{where}: {error}"
            files.append(ListedFile(cutouts, tuple(sorted(maps.items())), start, count, problem))
            start += count
            continue
        except InputError as error:
            raise InputError(f"{where}: {error}") from None
        if first is None:
            first = (opened, cutouts, set(maps))
        else:
            _check_like_first(opened, cutouts, set(maps), first, where)
        files.append(ListedFile(cutouts, tuple(sorted(maps.items())), start, opened.count))
        start += opened.count
    if first is None:
        raise InputError(f"{text}: no file can be read; the first: {files[0].problem}")
    head = first[0].cutouts
    summary = ListedCutouts("cutouts", Path(text), start, head.shape, head.facts)
    origins = {
        role: (f"column {role} of {text}" if role in columns else str(options[role]))
        for role in ROLES
        if role in columns or options[role] is not None
    }
    return InputList(tuple(files), summary, **origins)


def _count_or_one(cutouts: Path) -> int:
    """The rows of a cutouts file whose maps are unreadable: its count when its own header
    can be read, else one."""
    try:
        return open_stack(cutouts, "cutouts").count
    except InputError:
        return 1


def _is_fits(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(FITS_SUFFIXES)


def _map_for(value, cutouts: Path) -> Path:
    """The map file of `cutouts` named by an option: a rule, a directory, or one file."""
    if is_naming_rule(value):
        name = cutouts.name
        stem = next(
            (name[: -len(s)] for s in FITS_SUFFIXES if name.lower().endswith(s)), cutouts.stem
        )
        try:
            return Path(str(value).format(name=name, stem=stem, dir=cutouts.parent))
        except (KeyError, IndexError, ValueError) as error:
            raise InputError(
                f"naming rule {value!r}: {error!r}; the fields are {{name}}, {{stem}}, {{dir}}"
            ) from None
    value = Path(value)
    return value / cutouts.name if value.is_dir() else value


def read_list_file(path: Path) -> tuple[list, tuple[str, ...]]:
    """The entries (cutouts path, {role: path or None}, where) of a list file, and the map
    columns its header names."""
    if not path.is_file():
        raise InputError(f"cutouts {path}: no such file, directory or matching glob")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cutouts {path}: not a readable list of files ({error})") from None
    columns, entries = None, []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        try:
            fields = shlex.split(line, comments=True)
        except ValueError as error:
            raise InputError(f"{where}: {error}") from None
        if not fields:
            continue
        if columns is None:
            if fields[0] == "cutouts":
                columns = _header(fields, where)
                continue
            columns = ("cutouts",)
        if len(fields) != len(columns):
            raise InputError(
                f"{where}: {len(fields)} fields, but the list's columns are {' '.join(columns)}"
            )
        paths = [None if field == NONE else _relative_to(path, field) for field in fields]
        if paths[0] is None:
            raise InputError(f"{where}: a line needs its cutouts file")
        entries.append((paths[0], dict(zip(columns[1:], paths[1:], strict=True)), where))
    if not entries:
        raise InputError(f"cutouts {path}: a list naming no files")
    return entries, tuple(columns[1:])


def _header(fields: list[str], where: str) -> tuple[str, ...]:
    unknown = [field for field in fields[1:] if field not in ROLES]
    if unknown or len(set(fields)) != len(fields):
        raise InputError(
            f"{where}: columns {' '.join(fields)}; after cutouts, each of "
            f"{', '.join(ROLES)} at most once"
        )
    return tuple(fields)


def _relative_to(list_file: Path, field: str) -> Path:
    path = Path(field).expanduser()
    return path if path.is_absolute() else list_file.parent / path


def _check_like_first(opened: FitInputs, cutouts: Path, roles: set, first, where: str):
    """Every file of a list: the same cutout shape, kinds of maps and header facts."""
    reference, reference_path, reference_roles = first
    if opened.cutouts.shape != reference.cutouts.shape:
        raise InputError(
            f"{where}: cutouts of {opened.cutouts.shape}, but {reference_path} has "
            f"{reference.cutouts.shape}; every file of a job needs one cutout shape"
        )
    if roles != reference_roles:
        raise InputError(
            f"{where}: maps {sorted(roles) or 'none'}, but {reference_path} has "
            f"{sorted(reference_roles) or 'none'}; every file needs the same maps"
        )
    _check_same_facts(reference.cutouts.facts, opened.cutouts.facts, reference_path, cutouts, where)
