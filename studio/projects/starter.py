"""The starter project: the smallest context that shows why a Dockerfile copies its list of
dependencies and installs them *before* copying the rest of the code. Edit app.py and build
again, and only the layers from `COPY . .` up are rebuilt; edit requirements.txt, and the
install is rebuilt too. Any page that makes a new project for someone starts from here."""

from __future__ import annotations

from django.db import transaction

from studio.models import User
from studio.projects.models import Project

from . import services

DOCKERFILE = """\
FROM busybox:latest
WORKDIR /app
# The dependency list alone first: the install below is reused until this file changes.
COPY requirements.txt .
RUN mkdir -p /opt/deps \\
 && while read -r pkg; do \\
      echo "installing $pkg"; echo "$pkg" > "/opt/deps/$pkg"; sleep 0.3; \\
    done < requirements.txt
# The code last: editing app.py rebuilds only from here up.
COPY . .
CMD ["python", "app.py"]
"""

REQUIREMENTS = """\
flask
requests
"""

APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from Dockerfile Studio!"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
"""

FILES: dict[str, str] = {"Dockerfile": DOCKERFILE, "requirements.txt": REQUIREMENTS, "app.py": APP}


@transaction.atomic
def starter_create(*, owner: User, name: str) -> Project:
    """A new project of `owner` holding the starter files."""
    project = services.project_create(owner=owner, name=name, dockerfile=DOCKERFILE)
    for path, text in FILES.items():
        if path != project.dockerfile_path:
            services.project_file_put(project=project, path=path, data=text.encode())
    return project


def starter_name(*, owner: User) -> str:
    """A name the owner has not used yet: "my-first-image", then "my-first-image-2", ..."""
    taken = set(Project.objects.filter(owner=owner).values_list("name", flat=True))
    name, n = "my-first-image", 1
    while name in taken:
        n += 1
        name = f"my-first-image-{n}"
    return name
