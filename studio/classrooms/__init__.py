"""Classrooms: a teacher's class, the students who joined it with its code, the exercises handed
out to it (each student gets a project of their own), the checks every student's builds are held
to, and the teacher's live dashboard."""
