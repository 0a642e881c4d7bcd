print("Hello from the ordering lesson")
