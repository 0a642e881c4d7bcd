print("Hello from the .dockerignore lesson")
