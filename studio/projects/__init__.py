"""Projects and their files: a Dockerfile and its build context, edited in the studio, snapshotted
into immutable revisions that builds are made from."""
