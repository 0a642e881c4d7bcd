print("Hello from the cache mounts lesson")
