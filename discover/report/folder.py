"""Writing a comparison's report folder atomically: report.md, report.html, results.json and
the PNGs go into a temporary folder that is renamed into place, so no reader sees half of one."""

from __future__ import annotations

import os
import shutil

import numpy as np

from discover.files.atomic import ensure_writable_dir, package_versions, write_json_atomic
from discover.report.figures import draw_figures
from discover.report.markdown import html_report, markdown_report
from discover.theorem.text import json_number
from discover.training.comparison import Entry
from inner_loop.errors import ConfigError


def check_report_folder(output: str, given: str) -> str:
    """Before any work: `output` (trailing / removed) if it can become the report folder (new
    or empty, its parent writable); ConfigError (one line) if not. `given` is the -o text."""
    output = output.rstrip("/")
    if not output:
        raise ConfigError(f"-o {given!r} is not allowed; give a new folder name")
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"output folder {output!r} is an existing file; -o takes a new (or empty) folder")
    try:
        if os.path.isdir(output) and os.listdir(output):
            raise ConfigError(f"output folder {output!r} exists and is not empty; choose a new one")
    except OSError as err:
        raise ConfigError(f"cannot read output folder {output!r}: {err.strerror}") from None
    ensure_writable_dir(os.path.dirname(os.path.abspath(output)))
    return output


def write_report_folder(output: str, meta: dict, results: dict, runs: dict, entries: list[Entry],
                        envs: list[str], points: list, configs: dict, seed: int) -> str:
    """Write the report of `runs` into folder `output`; returns the markdown. `configs`:
    {(env, point name): the env's inner config}."""
    labels = [e.label for e in entries]
    staging = f"{output}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        figures = draw_figures(staging, runs, entries, envs, points, configs, results, seed)
        markdown = markdown_report(os.path.basename(output), meta, results, labels, envs, figures)
        with open(os.path.join(staging, "report.md"), "w") as f:
            f.write(markdown)
        with open(os.path.join(staging, "report.html"), "w") as f:
            f.write(html_report(markdown, staging))
        curves = {f"{label}|{env}|{p.name}": [[json_number(v) for v in row]
                                              for row in np.asarray(runs[(label, env, p.name)]["curve"])]
                  for label in labels for env in envs for p in points}
        write_json_atomic(os.path.join(staging, "results.json"),
                          {**meta, "configs": {env: {p.name: configs[(env, p.name)].to_dict() for p in points}
                                               for env in envs},
                           **results, "curves": curves, "versions": package_versions()})
        if os.path.isdir(output):
            os.rmdir(output)  # empty (checked before the runs)
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return markdown
