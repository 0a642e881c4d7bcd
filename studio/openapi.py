"""The API's OpenAPI 3.1 description, written by hand beside the views it describes and served at
/api/schema/. tests/test_api_schema.py checks that every route of the API is in it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from builds.engine.verdicts import VERDICTS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


ERROR = _json(_ref("Error"), "refused; `error` says why")
ERRORS = {
    "400": ERROR,
    "401": _json(_ref("Error"), "not signed in"),
    "403": _json(_ref("Error"), "signed in, but only the owner may do this (or the CSRF token is missing)"),
    "404": _json(_ref("Error"), "no such thing, or not yours to see"),
}
PROJECT_ID = {"name": "project_id", "in": "path", "required": True, "schema": {"type": "integer"}}
BUILD_ID = {"name": "build_id", "in": "path", "required": True, "schema": {"type": "integer"}}
TOKEN = {
    "name": "token",
    "in": "query",
    "schema": {"type": "string"},
    "description": "a share link's token: lets someone other than the owner look",
}
COMPARE_A = {"name": "a_id", "in": "path", "required": True, "schema": {"type": "integer"}}
COMPARE_B = {"name": "b_id", "in": "path", "required": True, "schema": {"type": "integer"}}
COMPARE_TOKENS = [
    {**TOKEN, "description": "a share link's token, tried for both builds"},
    {**TOKEN, "name": "a_token", "description": "a share link's token for build a's project"},
    {**TOKEN, "name": "b_token", "description": "a share link's token for build b's project"},
]
WEBSOCKETS = """
Websockets (same session cookie; other sites' pages are refused):

- `ws/builds/{build_id}/[?after=SEQ][&token=T]`: the build's events (the `Event` schema), stored
  ones first, then live ones, each exactly once in `seq` order. `after` skips what the page has.
- `ws/projects/{project_id}/[?token=T]`: `{"type": "build.status", "build": Build}` whenever a build
  of the project is queued or changes status.
"""

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what was wrong, and what to do about it"},
            "field": {"type": "string", "description": "the request field at fault"},
            "file": {"type": "string", "description": "the project or upload file at fault"},
            "line": {"type": "integer", "description": "the Dockerfile line at fault"},
            "limit": {
                "type": "string",
                "description": "the limit reached (413, 429): upload_bytes, file_bytes, project_bytes, "
                "project_files, path_depth, builds_per_minute, queued_builds_per_user, projects_per_user",
            },
            "max": {"type": "integer", "description": "that limit's value"},
            "retry_after": {"type": "integer", "description": "seconds until trying again can succeed"},
        },
    },
    "Project": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string", "maxLength": 100},
            "owner": {"type": "string"},
            "visibility": {"enum": ["private", "public"]},
            "dockerfile_path": {"type": "string"},
            "share_token": {"type": ["string", "null"], "description": "shown to the owner only"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "files": {"type": "array", "items": _ref("File"), "description": "in GET /api/projects/{id}/"},
        },
    },
    "File": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "relative, `/`-separated, inside the context"},
            "size": {"type": "integer"},
            "sha256": {"type": "string"},
            "mode": {"type": "integer", "description": "permission bits, e.g. 420 (0644) or 493 (0755)"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "FileContent": {
        "allOf": [
            _ref("File"),
            {
                "type": "object",
                "properties": {
                    "encoding": {"enum": ["utf-8", "base64"]},
                    "content": {"type": "string"},
                },
            },
        ]
    },
    "FilePut": {
        "type": "object",
        "required": ["content"],
        "properties": {
            "content": {"type": "string"},
            "encoding": {"enum": ["utf-8", "base64"], "default": "utf-8"},
            "mode": {"type": "integer"},
        },
    },
    "BuildRequest": {
        "type": "object",
        "properties": {
            "target": {"type": "string", "description": "the stage to build (default: the last)"},
            "build_args": {"type": "object", "additionalProperties": {"type": "string"}},
            "no_cache": {"type": "boolean", "default": False},
        },
    },
    "Build": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "project": {"type": "integer"},
            "number": {"type": "integer", "description": "1, 2, 3... within the project"},
            "revision": {"type": "string", "description": "sha256 of the files the build was made from"},
            "requested_by": {"type": ["string", "null"]},
            "target": {"type": ["string", "null"]},
            "build_args": {"type": "object", "additionalProperties": {"type": "string"}},
            "no_cache": {"type": "boolean"},
            "cache_scope": {
                "type": "object",
                "description": "whose cache the build read and filled: a person's own (kind user), "
                "a class's shared one (kind class), or the store's own (kind store: builds before scopes)",
                "properties": {
                    "kind": {"enum": ["user", "class", "store"]},
                    "name": {"type": "string"},
                    "label": {"type": "string"},
                },
            },
            "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "queued_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "cache": {
                "type": "object",
                "properties": {"hits": {"type": "integer"}, "misses": {"type": "integer"}},
            },
            "counts": {
                "type": "object",
                "description": "how many steps ended with each verdict (a FROM is a base, not counted)",
                "properties": {
                    v: {"type": "integer"} for v in VERDICTS
                },
            },
            "hit_ratio": {
                "type": ["number", "null"],
                "description": "hits / (hits + misses), to 3 places; null while the build has no such steps",
            },
            "image": {
                "type": ["object", "null"],
                "properties": {
                    "digest": {"type": "string"},
                    "size": {"type": "integer"},
                    "layers": {"type": "integer"},
                },
            },
            "duration_ms": {"type": ["integer", "null"]},
            "error": {
                "type": ["object", "null"],
                "description": "where it failed: message, and step, line, file where known",
            },
        },
    },
    "BuildDetail": {
        "allOf": [
            _ref("Build"),
            {
                "type": "object",
                "properties": {
                    "plan": {
                        "type": ["array", "null"],
                        "description": "build.started's steps: every step up front",
                        "items": {"type": "object"},
                    },
                    "steps": {"type": "array", "items": _ref("Step")},
                },
            },
        ]
    },
    "Step": {
        "type": "object",
        "description": "a step.finished event's fields (without type and seq)",
        "properties": {
            "step": {"type": "integer"},
            "stage": {"type": "string"},
            "instruction": {"type": "string"},
            "line": {"type": "integer"},
            "keyword": {"type": "string"},
            "status": {"enum": list(VERDICTS)},
            "cached": {"type": "boolean"},
            "cache_key": {"type": ["string", "null"]},
            "reason": {
                "type": ["object", "null"],
                "description": "{code, message, ...} for a step not cached",
            },
            "layer": {"type": ["object", "null"]},
            "duration_ms": {"type": "integer"},
        },
    },
    "PlanRequest": {
        "type": "object",
        "properties": {
            "dockerfile": {
                "type": "string",
                "description": "the Dockerfile's text as it is being typed (default: the saved one)",
            },
            "target": {"type": "string", "description": "the stage to build (default: the last)"},
            "build_args": {"type": "object", "additionalProperties": {"type": "string"}},
            "no_cache": {"type": "boolean", "default": False},
        },
    },
    "Plan": {
        "type": "object",
        "required": ["steps", "error"],
        "properties": {
            "steps": {"type": "array", "items": _ref("PlannedStep")},
            "error": {
                "type": ["object", "null"],
                "description": "where the build would stop before running anything: a Dockerfile that "
                "does not parse, an unknown base image or target, a missing COPY source. `message`, "
                "`line` (null when no line is at fault), `step` where known; `steps` then holds the "
                "steps before it",
                "properties": {
                    "message": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "step": {"type": "integer"},
                },
            },
        },
    },
    "PlannedStep": {
        "type": "object",
        "description": "what the next build would do with one step, predicted without running anything",
        "properties": {
            "step": {"type": "integer"},
            "stage": {"type": "string"},
            "instruction": {"type": "string"},
            "line": {"type": "integer"},
            "end_line": {"type": "integer", "description": "the last line of a continued instruction"},
            "keyword": {"type": "string"},
            "prediction": {"enum": ["cached", "rebuild", "metadata", "skipped"]},
            "reason": {
                "type": ["object", "null"],
                "description": "{code, message, ...} as the build would give it for a step it rebuilds or "
                "skips; `source_rebuilt` for a COPY --from a stage this build rebuilds first",
            },
            "certain": {
                "type": "boolean",
                "description": "false where the verdict depends on files a step still to run makes (a "
                "COPY --from a stage that will be rebuilt, and the steps above it)",
            },
            "cache_key": {"type": ["string", "null"], "description": "the step's key, where it can be known"},
            "metadata": {
                "type": "boolean",
                "description": "true for a step that changes no files (ENV, CMD...)",
            },
            "base": {"type": "object", "description": "for a FROM: the base's ref and digest"},
        },
    },
    "Diagnostic": {
        "type": "object",
        "properties": {
            "line": {"type": "integer"},
            "end_line": {"type": "integer", "description": "the last line of the instruction at fault"},
            "column": {"type": ["integer", "null"]},
            "severity": {"enum": ["error", "warning", "info"]},
            "code": {
                "type": "string",
                "description": "hadolint's rule (DL3006, SC2086...) or the studio's own (studio/copy-all-"
                "before-install, studio/early-arg, studio/cleanup-in-own-run, studio/apt-update-alone, "
                "studio/parse-error, studio/hadolint-unavailable)",
            },
            "message": {"type": "string"},
            "source": {"enum": ["hadolint", "studio"]},
            "url": {"type": ["string", "null"], "description": "the rule's documentation"},
        },
    },
    "StepDetail": {
        "allOf": [
            _ref("Step"),
            {
                "type": "object",
                "properties": {
                    "files": {
                        "type": "array",
                        "description": "what the step's layer added, modified and deleted (empty for a step "
                        "with no layer); a deleted entry's kind is what it was in the layers below "
                        "(`other` when that cannot be told)",
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": {"type": "string", "description": "inside the image, no leading /"},
                                "change": {"enum": ["added", "modified", "deleted"]},
                                "kind": {"enum": ["file", "dir", "symlink", "other"]},
                                "size": {"type": "integer", "description": "bytes"},
                            },
                        },
                    },
                    "files_truncated": {"type": "boolean", "description": "more than the first 5000 files"},
                    "log": {
                        "type": "array",
                        "description": "what the step printed, as its step.log events",
                        "items": {
                            "type": "object",
                            "properties": {
                                "stream": {"enum": ["stdout", "stderr"]},
                                "text": {"type": "string"},
                            },
                        },
                    },
                    "log_truncated": {"type": "boolean", "description": "more than 2000 lines or 512 KB"},
                    "cache_inputs": {
                        "type": ["object", "null"],
                        "description": "what the step's cache key is the hash of: `parent` (the key below "
                        "it) and the step's inputs (RUN: args, env, cwd, user, network; COPY: src, sources' "
                        "checksums, dest...). Null for a step with no key",
                    },
                },
            },
        ]
    },
    "Event": {
        "type": "object",
        "required": ["type", "seq"],
        "description": "one of build.started, step.started, step.log, step.finished, build.finished, as the "
        "engine's event schema defines them (see DESIGN.md), or image.pull while a FROM pulls its base "
        "image (see the README's Registries)",
        "properties": {
            "type": {
                "enum": ["build.started", "step.started", "step.log", "step.finished", "build.finished",
                         "image.pull", "image.push"]
            },
            "seq": {"type": "integer", "minimum": 1},
        },
        "additionalProperties": True,
    },
    "CompareStep": {
        "type": "object",
        "description": "one build's step on a comparison row: its `step.finished` fields, `end_line` "
        "(its last Dockerfile line) and `size` (its layer's bytes, 0 without a layer). `status` is "
        "also `pending` (still to come) or `not_run` (the build stopped before it)",
        "properties": {
            "step": {"type": "integer"},
            "stage": {"type": "string"},
            "instruction": {"type": "string"},
            "line": {"type": "integer"},
            "end_line": {"type": "integer"},
            "keyword": {"type": "string"},
            "status": {"enum": [*VERDICTS, "pending", "not_run"]},
            "cached": {"type": "boolean"},
            "cache_key": {"type": ["string", "null"]},
            "reason": {"type": ["object", "null"]},
            "layer": {"type": ["object", "null"]},
            "duration_ms": {"type": "integer"},
            "size": {"type": "integer"},
        },
    },
    "CompareRow": {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "kind": {
                "enum": ["same", "changed", "moved", "removed", "added"],
                "description": "the same instruction, an edited one, the same one at another place, "
                "only in build a, only in build b",
            },
            "a": {"oneOf": [_ref("CompareStep"), {"type": "null"}], "description": "null: a gap"},
            "b": {"oneOf": [_ref("CompareStep"), {"type": "null"}]},
            "same_key": {"type": ["boolean", "null"], "description": "null when a side has no key"},
            "parted": {"type": "boolean", "description": "the builds went different ways here"},
            "first_divergence": {"type": "boolean"},
            "duration_delta_ms": {"type": ["integer", "null"], "description": "b minus a"},
            "size_delta": {"type": ["integer", "null"], "description": "b minus a, in bytes"},
        },
    },
    "Comparison": {
        "type": "object",
        "properties": {
            "a": _ref("Build"),
            "b": _ref("Build"),
            "rows": {"type": "array", "items": _ref("CompareRow")},
            "dockerfiles": {
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "string"},
                    "diff": _ref("LinesDiff"),
                },
            },
            "summary": {
                "type": "object",
                "properties": {
                    "first_divergence": {"type": ["integer", "null"], "description": "a row index"},
                    "parting": {
                        "type": ["object", "null"],
                        "description": "why the builds part at that row, said between the two builds: "
                        "`row`, `code` (only_in_a, only_in_b, instruction_differs, moved, failed, not_run, "
                        "base_differs, files_differ, no_cache, build_args_differ, inputs_differ), `message`",
                    },
                    "rows": {"type": "object", "description": "rows of each kind"},
                    "duration_delta_ms": {"type": ["integer", "null"]},
                    "image_size_delta": {"type": ["integer", "null"]},
                    "shared_layers": {
                        "type": ["object", "null"],
                        "description": "layers in both images (by digest) and their bytes, stored once; "
                        "null unless both images are in the store",
                        "properties": {
                            "count": {"type": "integer"},
                            "bytes": {"type": "integer"},
                            "a_layers": {"type": "integer"},
                            "b_layers": {"type": "integer"},
                            "layers": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
        },
    },
    "LinesDiff": {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "op": {"enum": ["equal", "delete", "insert"]},
                        "a": {"type": ["integer", "null"], "description": "line number in a"},
                        "b": {"type": ["integer", "null"], "description": "line number in b"},
                        "text": {"type": "string"},
                    },
                },
            },
            "truncated": {"type": "boolean"},
        },
    },
    "CompareRowDetail": {
        "type": "object",
        "properties": {
            "a": {"oneOf": [_ref("CompareStep"), {"type": "null"}]},
            "b": {"oneOf": [_ref("CompareStep"), {"type": "null"}]},
            "instruction": {
                "type": "array",
                "description": "[op, text] pieces: equal, delete (only in a), insert (only in b)",
                "items": {"type": "array", "items": {"type": "string"}},
            },
            "context": {
                "type": "object",
                "description": "for COPY/ADD: the context files each side read (`files`: path, change "
                "added|removed|changed|same, a_size, b_size, and `diff` lines for changed text files); "
                "`reads` false for other steps",
            },
            "layer": {
                "type": "object",
                "description": "the two layers' files (`files`: path, kind, change, a_size, b_size, and "
                "what each layer did: a_change, b_change); `layers` false when neither step wrote one",
            },
        },
    },
}


SCHEMAS["DiskUsage"] = {
    "type": "object",
    "properties": {
        "images": {
            "type": "array",
            "description": "each image once: `names` (its tags), `digest`, `size` (all its layers), "
            "`unique` (its layers no other image has), `layers` (ids, bottom first)",
            "items": {"type": "object"},
        },
        "layers": {
            "type": "array",
            "description": "each layer once, most shared first: `id`, `diff_id`, `size`, `images` (the "
            "images having it, by first name), `shared_by`",
            "items": {"type": "object"},
        },
        "images_total": {"type": "integer", "description": "bytes the images would take unshared"},
        "stored": {"type": "integer", "description": "bytes their layers take, each once"},
        "saved": {"type": "integer", "description": "images_total - stored"},
    },
}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**responses, **ERRORS}, **extra}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


PATHS: dict[str, Any] = {
    "/api/projects/": {
        "get": _op(
            "your projects",
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"projects": {"type": "array", "items": _ref("Project")}},
                    }
                )
            },
        ),
        "post": _op(
            "create a project (with a starter Dockerfile unless `dockerfile` is given)",
            {"201": _json(_ref("Project")), "409": ERROR, "429": ERROR},
            requestBody=_body(
                {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "visibility": {"enum": ["private", "public"]},
                        "dockerfile": {"type": "string"},
                    },
                }
            ),
        ),
    },
    "/api/projects/{project_id}/": {
        "parameters": [PROJECT_ID],
        "get": _op("a project with its files", {"200": _json(_ref("Project"))}, parameters=[TOKEN]),
        "patch": _op(
            "rename it, change its visibility or its Dockerfile's path",
            {"200": _json(_ref("Project")), "409": ERROR},
            requestBody=_body(
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "visibility": {"enum": ["private", "public"]},
                        "dockerfile_path": {"type": "string"},
                    },
                }
            ),
        ),
        "delete": _op("delete it with its files and builds", {"200": _json({"type": "object"})}),
    },
    "/api/projects/{project_id}/share/": {
        "parameters": [PROJECT_ID],
        "post": _op(
            "make a new share link token (the old one stops working)",
            {"200": _json({"type": "object", "properties": {"share_token": {"type": "string"}}})},
        ),
        "delete": _op("stop sharing", {"200": _json({"type": "object"})}),
    },
    "/api/projects/{project_id}/files/": {
        "parameters": [PROJECT_ID],
        "get": _op(
            "the project's files (without content)",
            {
                "200": _json(
                    {"type": "object", "properties": {"files": {"type": "array", "items": _ref("File")}}}
                )
            },
            parameters=[TOKEN],
        ),
    },
    "/api/projects/{project_id}/files/{path}": {
        "parameters": [
            PROJECT_ID,
            {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
        ],
        "get": _op("a file with its content", {"200": _json(_ref("FileContent"))}, parameters=[TOKEN]),
        "put": _op(
            "create or replace a file",
            {"200": _json(_ref("File")), "413": ERROR},
            requestBody=_body(_ref("FilePut")),
        ),
        "delete": _op("delete a file", {"200": _json({"type": "object"})}),
    },
    "/api/projects/{project_id}/files-move/": {
        "parameters": [PROJECT_ID],
        "post": _op(
            "rename a file, or move a folder with every file under it; moving the Dockerfile moves "
            "`dockerfile_path` with it. A name already taken is refused (409), naming it.",
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "files": {"type": "array", "items": _ref("File")},
                            "dockerfile_path": {"type": "string"},
                        },
                    }
                ),
                "409": ERROR,
            },
            requestBody=_body(
                {
                    "type": "object",
                    "required": ["from", "to"],
                    "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                }
            ),
        ),
    },
    "/api/projects/{project_id}/context/": {
        "parameters": [
            PROJECT_ID,
            {
                "name": "replace",
                "in": "query",
                "schema": {"type": "boolean", "default": True},
                "description": "false: add to the files instead of replacing them all",
            },
        ],
        "post": _op(
            "upload the context as a tar (plain, gz, bz2, xz) or zip archive: the raw body, or a multipart "
            "form's `context` file. Only files and folders; paths inside the context.",
            {
                "201": _json(
                    {
                        "type": "object",
                        "properties": {
                            "files": {"type": "array", "items": _ref("File")},
                            "replaced": {"type": "boolean"},
                        },
                    }
                ),
                "413": _json(_ref("Error"), "over a size or count limit, named in `limit`"),
            },
            requestBody={
                "required": True,
                "content": {
                    "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
                    "application/zip": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"context": {"type": "string", "format": "binary"}},
                        }
                    },
                },
            },
        ),
    },
    "/api/projects/{project_id}/builds/": {
        "parameters": [PROJECT_ID],
        "get": _op(
            "the project's builds, newest first",
            {
                "200": _json(
                    {"type": "object", "properties": {"builds": {"type": "array", "items": _ref("Build")}}}
                )
            },
            parameters=[
                TOKEN,
                {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "a build id"},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
            ],
        ),
        "post": _op(
            "queue a build of the project's files as they are now. A Dockerfile that does not parse is "
            "refused here, naming its line; everything else is the build's outcome.",
            {"202": _json(_ref("Build")), "429": _json(_ref("Error"), "over the build rate or queue limit")},
            requestBody=_body(_ref("BuildRequest")),
        ),
    },
    "/api/projects/{project_id}/plan/": {
        "parameters": [PROJECT_ID],
        "post": _op(
            "predict the next build: for every step, served from the cache or rebuilt and why, or skipped. "
            "Runs nothing. Over the project's saved files, with `dockerfile` as the Dockerfile's text "
            "when given. Only the owner may ask.",
            {
                "200": _json(_ref("Plan")),
                "413": ERROR,
                "429": _json(_ref("Error"), "asking too fast, or the previous prediction still runs"),
            },
            requestBody=_body(_ref("PlanRequest")),
        ),
    },
    "/api/projects/{project_id}/lint/": {
        "parameters": [PROJECT_ID],
        "post": _op(
            "lint a Dockerfile's text (default: the saved one): hadolint's diagnostics and the studio's "
            "cache-order hints, in line order. Whoever may see the project may ask.",
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"diagnostics": {"type": "array", "items": _ref("Diagnostic")}},
                    }
                ),
                "413": ERROR,
                "429": _json(_ref("Error"), "asking too fast, or the previous lint still runs"),
            },
            parameters=[TOKEN],
            requestBody=_body({"type": "object", "properties": {"dockerfile": {"type": "string"}}}),
        ),
    },
    "/api/builds/{build_id}/": {
        "parameters": [BUILD_ID],
        "get": _op(
            "a build with its plan and finished steps",
            {"200": _json(_ref("BuildDetail"))},
            parameters=[TOKEN],
        ),
    },
    "/api/builds/{build_id}/steps/{number}/": {
        "parameters": [
            BUILD_ID,
            {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}},
        ],
        "get": _op(
            "one step of a build with its layer's files, its log and its cache key's inputs",
            {"200": _json(_ref("StepDetail"))},
            parameters=[TOKEN],
        ),
    },
    "/api/builds/{build_id}/cancel/": {
        "parameters": [BUILD_ID],
        "post": _op(
            "cancel: a queued build ends at once, a running one is stopped (its status follows on the "
            "websocket)",
            {"202": _json(_ref("Build")), "409": _json(_ref("Error"), "already finished")},
        ),
    },
    "/api/builds/{build_id}/events/": {
        "parameters": [BUILD_ID],
        "get": _op(
            "the build's stored events after a seq",
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "build": {"type": "integer"},
                            "status": {"type": "string"},
                            "events": {"type": "array", "items": _ref("Event")},
                            "more": {"type": "boolean", "description": "ask again after the last seq"},
                        },
                    }
                )
            },
            parameters=[
                TOKEN,
                {"name": "after", "in": "query", "schema": {"type": "integer", "default": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}},
            ],
        ),
    },
    "/api/compare/{a_id}/{b_id}/": {
        "parameters": [COMPARE_A, COMPARE_B],
        "get": _op(
            "two builds side by side: their steps aligned row by row (inserted, removed, moved and edited "
            "steps, renamed stages), where they first part, the Dockerfiles' diff, and what the images "
            "share. 404 unless you may see both builds",
            {"200": _json(_ref("Comparison"))},
            parameters=COMPARE_TOKENS,
        ),
    },
    "/api/compare/{a_id}/{b_id}/row/": {
        "parameters": [COMPARE_A, COMPARE_B],
        "get": _op(
            "one row in detail: the instructions' word diff, the context files each step read, the "
            "two layers' files",
            {"200": _json(_ref("CompareRowDetail"))},
            parameters=[
                {
                    "name": "a",
                    "in": "query",
                    "schema": {"type": "integer"},
                    "description": "a step of build a; empty for a gap",
                },
                {
                    "name": "b",
                    "in": "query",
                    "schema": {"type": "integer"},
                    "description": "a step of build b; empty for a gap",
                },
                *COMPARE_TOKENS,
            ],
        ),
    },
    "/api/images/df/": {
        "get": _op(
            "the store's tagged images (the base images builds start from), every layer with its size "
            "and the images sharing it, and the bytes sharing saves",
            {"200": _json(_ref("DiskUsage"))},
        ),
    },
}

# The classrooms' part builds on the helpers above.
from .classrooms import openapi as classrooms  # noqa: E402

PATHS.update(classrooms.PATHS)
SCHEMAS.update(classrooms.SCHEMAS)
WEBSOCKETS += classrooms.WEBSOCKETS

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Dockerfile Studio API",
        "version": "1",
        "description": "Session authentication: sign in at /accounts/login/. Every POST, PUT, PATCH and "
        "DELETE sends the `csrftoken` cookie's value as the X-CSRFToken header. Errors are "
        '`{"error": message}` plus `field`, `file`, `line` or `limit` where they apply.\n' + WEBSOCKETS,
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "sessionid"}},
    },
    "security": [{"session": []}],
}


@require_GET
def schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(DOCUMENT)
