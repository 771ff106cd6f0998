// swift-tools-version:6.0
import PackageDescription

// Layout: kernels (CRecurKernels, plain C over buffers) → engine (Recur: tensors, model file, layers,
// sequence driver, sessions, generation) → transports (RecurC = librecur.so, RecurDaemon = recurd)
// and tools (RecurCLI = recur, RecurTraining).
let package = Package(
    name: "Recur",
    products: [
        .library(name: "Recur", targets: ["Recur"]),
        // librecur.so: the C API of Include/recur.h.
        .library(name: "recur", type: .dynamic, targets: ["RecurC"]),
        // The command-line tool. SwiftPM cannot name an executable like a library product, so the
        // binary is recur-cli and bin/recur runs it as `recur`.
        .executable(name: "recur-cli", targets: ["RecurCLI"]),
        .executable(name: "recurd", targets: ["RecurDaemon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(
            name: "CRecurKernels",
            // Kernels are built optimised even in debug builds: the tests run real shapes.
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno", "-Wno-psabi"])]
        ),
        .systemLibrary(name: "CZMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CLinux"),
        // recur_plugin.h for Swift, and opening plugin libraries (dlopen) for the engine.
        .target(name: "CRecurPlugin"),
        .target(name: "Recur", dependencies: ["CRecurKernels", "CRecurPlugin", "CLinux"]),
        // The Swift layer over libzmq (context, socket, poll, CURVE keys) for recurd and `recur keygen`.
        .target(name: "RecurZMQ", dependencies: ["CZMQ"]),
        // The C side of librecur.so: recur.h's types for Swift and the thread-local last error.
        .target(name: "CRecurAPI"),
        .target(name: "RecurC", dependencies: ["Recur", "CRecurAPI", "CRecurKernels"]),
        .target(name: "RecurTraining", dependencies: ["Recur", "CRecurKernels"]),
        .executableTarget(
            name: "RecurCLI",
            dependencies: [
                "Recur", "RecurTraining", "RecurZMQ", "CRecurKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "RecurDaemon",
            dependencies: [
                "Recur", "RecurZMQ", "CZMQ", "CLinux", "CRecurAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "RecurTests", dependencies: ["Recur", "RecurTraining", "CRecurKernels"], exclude: ["Fixtures"]),
        .testTarget(name: "RecurZMQTests", dependencies: ["RecurZMQ"]),
    ],
    swiftLanguageModes: [.v6]
)
