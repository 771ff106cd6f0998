/// The engine's version, "MAJOR.MINOR.PATCH" (recur_version() in the C API, recur.__version__).
public let recurVersion = recurVersionLiteral.description

/// `recurVersion` as a literal: its NUL-terminated UTF-8 bytes live as long as the program, so the
/// C API hands them out without copying.
public let recurVersionLiteral: StaticString = "0.1.0"
