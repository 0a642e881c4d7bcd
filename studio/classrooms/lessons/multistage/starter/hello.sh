echo "Hello from a multi-stage build"
