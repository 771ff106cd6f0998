// Fuzz target: the JSON parser (model headers, architectures, daemon requests all go through it).
// Parsing must end in a value or an error; a value must serialise to text that parses back to the
// same text again.
import Recur

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let value = try? JSONValue.parse(fuzzBytes(data, size)) else { return 0 }
    let text = value.serialized()
    guard let again = try? JSONValue.parse(text) else {
        check(false, "serialised JSON does not parse: \(text.prefix(200))")
        return 0
    }
    check(again.serialized() == text, "serialising is not stable: \(text.prefix(200))")
    return 0
}
