"""The classrooms' pages and JSON API, included by studio/urls.py."""

from __future__ import annotations

from django.urls import path

from . import api, pages

urlpatterns = [
    path("classrooms/", pages.classrooms, name="classrooms"),
    path("classrooms/join/", pages.join, name="classroom-join"),
    path("classrooms/join/<str:code>/", pages.join, name="classroom-join-code"),
    path("classrooms/<int:classroom_id>/", pages.classroom, name="classroom-page"),
    path("classrooms/<int:classroom_id>/exercises/", pages.exercise_new, name="classroom-exercise-new"),
    path("classrooms/<int:classroom_id>/settings/", pages.classroom_settings, name="classroom-settings"),
    path(
        "classrooms/<int:classroom_id>/students/<int:student_id>/remove/",
        pages.student_remove,
        name="classroom-student-remove",
    ),
    path("api/classrooms/", api.classrooms, name="api-classrooms"),
    path("api/classrooms/join/", api.classroom_join, name="api-classroom-join"),
    path("api/classrooms/<int:classroom_id>/", api.classroom, name="api-classroom"),
    path(
        "api/classrooms/<int:classroom_id>/exercises/",
        api.classroom_exercises,
        name="api-classroom-exercises",
    ),
    path(
        "api/classrooms/<int:classroom_id>/dashboard/",
        api.classroom_dashboard,
        name="api-classroom-dashboard",
    ),
    path(
        "api/classrooms/<int:classroom_id>/students/<int:student_id>/",
        api.classroom_student,
        name="api-classroom-student",
    ),
]
