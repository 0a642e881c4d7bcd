"""The classrooms' pages, included by studio/urls.py (their JSON API is studio/classrooms/api.py's
router, on studio/api_root.py's API)."""

from __future__ import annotations

from django.urls import path

from . import pages

urlpatterns = [
    path("classrooms/", pages.classrooms, name="classrooms"),
    path("classrooms/join/", pages.join, name="classroom-join"),
    path("classrooms/join/<str:code>/", pages.join, name="classroom-join-code"),
    path("classrooms/<int:classroom_id>/", pages.classroom, name="classroom-page"),
    path("classrooms/<int:classroom_id>/exercises/", pages.exercise_new, name="classroom-exercise-new"),
    path("classrooms/<int:classroom_id>/lessons/", pages.lesson_new, name="classroom-lesson-new"),
    path(
        "classrooms/<int:classroom_id>/exercises/<int:exercise_id>/edit/",
        pages.exercise_edit,
        name="classroom-exercise-edit",
    ),
    path("classrooms/<int:classroom_id>/results.csv", pages.results_csv, name="classroom-results-csv"),
    path(
        "classrooms/<int:classroom_id>/exercises/<int:exercise_id>/students/<int:student_id>/reset/",
        pages.student_reset,
        name="classroom-student-reset",
    ),
    path(
        "classrooms/<int:classroom_id>/exercises/<int:exercise_id>/students/<int:student_id>/builds/",
        pages.student_builds,
        name="classroom-student-builds",
    ),
    path(
        "classrooms/<int:classroom_id>/exercises/<int:exercise_id>/prediction/",
        pages.prediction_new,
        name="classroom-prediction",
    ),
    path(
        "classrooms/<int:classroom_id>/exercises/<int:exercise_id>/mistakes/example/",
        pages.mistake_example,
        name="classroom-mistake-example",
    ),
    path("classrooms/<int:classroom_id>/settings/", pages.classroom_settings, name="classroom-settings"),
    path(
        "classrooms/<int:classroom_id>/students/<int:student_id>/remove/",
        pages.student_remove,
        name="classroom-student-remove",
    ),
]
