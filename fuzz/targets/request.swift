// Fuzz target: the daemon's request decoding (Sources/RecurDaemon/Wire.swift), then the engine
// work a decoded request leads to, against the golden models. Input: the message's frames joined
// by the 4-byte separator FF FE 46 52 ("\xff\xfeFR"), frame 0 being the JSON header.
import Recur

let separator: [UInt8] = [0xFF, 0xFE, 0x46, 0x52]
// The daemon's defaults, except fewer generated tokens so that runs stay fast.
let limits = RequestLimits(maxTensorElements: 16 << 20, maxRequestElements: 32 << 20, maxSteps: 100_000, maxGenerateTokens: 64)

func frames(_ bytes: [UInt8]) -> [[UInt8]] {
    var frames: [[UInt8]] = [[]]
    var i = 0
    while i < bytes.count {
        if i + 4 <= bytes.count && Array(bytes[i..<(i + 4)]) == separator {
            frames.append([])
            i += 4
        } else {
            frames[frames.count - 1].append(bytes[i])
            i += 1
        }
    }
    return frames
}

func model(_ name: String) -> Model? { goldenModels.first { $0.name == name }?.model }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let (_, decoded) = RequestDecoder.decode(frames(fuzzBytes(data, size)), limits: limits)
    guard case .success(let request) = decoded else { return 0 }
    var encoder = ReplyEncoder(binary: request.binary)
    switch request.operation {
    case .infer(let name, let inputs, _):
        guard let model = model(name) else { return 0 }
        for result in Batching.run(model, [inputs, inputs]) {
            if case .success(let outputs) = result { outputs.forEach { _ = encoder.encode($0.tensor) } }
        }
    case .sessionStep(let name, let inputs):
        guard let model = model(name), let session = try? Session(model: model) else { return 0 }
        var sessions = [session, session]
        _ = Batching.step(&sessions, [inputs, inputs])
    case .generate(let name, let prompt, let maxTokens, let sampling, let stop):
        _ = try? model(name)?.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stop)
    case .describe(let name):
        _ = model(name)?.describe().serialized()
    default:
        break
    }
    _ = ReplyEncoder.success(id: request.id, [:], frames: encoder.frames)
    return 0
}
