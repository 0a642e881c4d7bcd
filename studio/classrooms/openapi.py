"""The classrooms' part of the API's description, merged into studio/openapi.py's document
(which imports this module once its own helpers exist)."""

from __future__ import annotations

from typing import Any

from studio.openapi import ERROR, _body, _json, _op, _ref

CLASSROOM_ID = {"name": "classroom_id", "in": "path", "required": True, "schema": {"type": "integer"}}
STUDENT_ID = {
    "name": "student_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
    "description": "the student's place in the class (`students[].id`), not their account",
}
WEBSOCKETS = """- `ws/classrooms/{classroom_id}/[?exercise=ID]`: the class's teacher only. First
  `{"type": "classroom.snapshot", ...Dashboard}`, then `{"type": "student.row", "row": StudentRow}`
  when a student's build is queued, starts or ends, `{"type": "student.step", student, exercise,
  build, step, status}` as a step starts (`running`) or finishes, and `{"type": "student.removed",
  student}`.
"""

CHECK = {
    "type": "object",
    "required": ["kind"],
    "description": "rebuild_after_change {file, max_steps}: after changing only that file since the last "
    "successful build, at most max_steps steps rebuild; image_size {max_mb}: under that many MB "
    "(1,000,000 bytes); layers {max}: no more than that many layers; absent_path {path}: the final "
    "image holds nothing at that path (a directory counts with all under it; * ? [] match patterns)",
    "properties": {
        "kind": {"enum": ["rebuild_after_change", "image_size", "layers", "absent_path"]},
        "file": {"type": "string"},
        "max_steps": {"type": "integer", "minimum": 0},
        "max_mb": {"type": "integer", "minimum": 0},
        "max": {"type": "integer", "minimum": 0},
        "path": {"type": "string"},
        "description": {"type": "string", "description": "the check as the class reads it (answers only)"},
    },
}
RESULT = {
    "type": "object",
    "properties": {
        "check": {"type": "string"},
        "status": {"enum": ["pass", "fail", "not_yet"]},
        "message": {"type": "string", "description": "why, naming the build it judged"},
        "build": {"type": ["integer", "null"], "description": "that build's number"},
    },
}

SCHEMAS: dict[str, Any] = {
    "ExerciseCheck": CHECK,
    "CheckResult": RESULT,
    "Exercise": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "instructions": {"type": "string"},
            "checks": {"type": "array", "items": _ref("ExerciseCheck")},
            "created_at": {"type": "string", "format": "date-time"},
            "project": {"type": "integer", "description": "a student's: their own copy"},
            "studio_url": {"type": "string", "description": "a student's: their copy in the studio"},
            "results": {"type": "array", "items": _ref("CheckResult"), "description": "a student's"},
            "judged_build": {"type": ["integer", "null"], "description": "the build the results are as of"},
        },
    },
    "Classroom": {
        "type": "object",
        "description": "as its teacher sees it (role teacher) or as a student does (role student: no code, "
        "no other students, their own exercises with results)",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "role": {"enum": ["teacher", "student"]},
            "closed": {"type": "boolean"},
            "join_code": {"type": "string"},
            "join_url": {"type": "string"},
            "teacher": {"type": "string"},
            "me": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
            "shared_project": {"type": ["object", "null"]},
            "shared_cache": {
                "type": "boolean",
                "description": "the class's exercise copies build in one cache the class shares",
            },
            "students": {"type": "array", "items": {"type": "object"}},
            "exercises": {"type": "array", "items": _ref("Exercise")},
        },
    },
    "StudentRow": {
        "type": "object",
        "properties": {
            "student": {"type": "integer"},
            "name": {"type": "string"},
            "username": {"type": "string"},
            "exercise": {"type": "integer"},
            "project": {"type": "integer"},
            "build": {
                "type": ["object", "null"],
                "description": "the latest build: id, number, status, cache, hit_ratio, image_size, "
                "image_layers, steps [{step, instruction, line, status}]",
            },
            "checks": {"type": "object", "description": "passed, total, results"},
            "last_activity": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/classrooms/": {
        "get": _op(
            "the classes you teach and those you are in",
            {"200": _json({"type": "object", "properties": {"classrooms": {"type": "array"}}})},
        ),
        "post": _op(
            "create a class (you teach it); the answer has its join code and link",
            {"201": _json(_ref("Classroom"))},
            requestBody=_body(
                {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
            ),
        ),
    },
    "/api/classrooms/join/": {
        "post": _op(
            "join a class with its code, and get a copy of every exercise handed out",
            {"201": _json(_ref("Classroom")), "409": ERROR},
            requestBody=_body(
                {
                    "type": "object",
                    "required": ["code", "display_name"],
                    "properties": {"code": {"type": "string"}, "display_name": {"type": "string"}},
                }
            ),
        ),
    },
    "/api/classrooms/{classroom_id}/": {
        "parameters": [CLASSROOM_ID],
        "get": _op("the class, as you may see it", {"200": _json(_ref("Classroom"))}),
        "patch": _op(
            "teacher: rename, close or reopen the class, or share one of your projects with it",
            {"200": _json(_ref("Classroom"))},
            requestBody=_body(
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "closed": {"type": "boolean"},
                        "shared_project": {"type": ["integer", "null"]},
                        "shared_cache": {"type": "boolean"},
                    },
                }
            ),
        ),
    },
    "/api/classrooms/{classroom_id}/exercises/": {
        "parameters": [CLASSROOM_ID],
        "post": _op(
            "teacher: hand out one of your projects (a new starter when none) as an exercise",
            {"201": _json(_ref("Exercise"))},
            requestBody=_body(
                {
                    "type": "object",
                    "required": ["title"],
                    "properties": {
                        "title": {"type": "string"},
                        "instructions": {"type": "string"},
                        "project": {"type": "integer"},
                        "checks": {"type": "array", "items": _ref("ExerciseCheck")},
                    },
                }
            ),
        ),
    },
    "/api/classrooms/{classroom_id}/dashboard/": {
        "parameters": [CLASSROOM_ID],
        "get": _op(
            "teacher: the grid of one exercise (the latest unless `exercise`)",
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "classroom": {"type": "integer"},
                            "exercise": {"type": ["object", "null"]},
                            "students": {"type": "array", "items": _ref("StudentRow")},
                        },
                    }
                )
            },
            parameters=[{"name": "exercise", "in": "query", "schema": {"type": "integer"}}],
        ),
    },
    "/api/classrooms/{classroom_id}/students/{student_id}/": {
        "parameters": [CLASSROOM_ID, STUDENT_ID],
        "delete": _op(
            "teacher: remove a student (their copies stay theirs; they cannot join again)",
            {"200": _json({"type": "object"})},
        ),
    },
}
