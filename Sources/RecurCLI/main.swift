print("recur: not yet")
