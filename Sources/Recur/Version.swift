/// The engine's version, "MAJOR.MINOR.PATCH" (recur_version() in the C API, recur.__version__).
public let recurVersion = "0.1.0"
