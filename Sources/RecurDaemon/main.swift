print("recurd: not yet")
