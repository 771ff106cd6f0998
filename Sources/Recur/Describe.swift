extension Model {
    /// The architecture document plus what it implies: `inputs` and `outputs` as
    /// {name: {"dtype", "shape"}} with "B" and "T" for the batch and step dimensions, `parameters`
    /// (float count), `can_stream` and `can_generate`. The C API, the daemon and the CLI serve this.
    public func describe() -> JSONValue {
        var document = architecture.json.objectValue ?? [:]
        func spec(_ dtype: String, _ shape: [JSONValue]) -> JSONValue {
            .object(["dtype": .string(dtype), "shape": .array(shape)])
        }
        let (B, T): (JSONValue, JSONValue) = (.string("B"), .string("T"))
        var inputs: [String: JSONValue] = [:]
        switch architecture.input {
        case .tokens: inputs["input"] = spec("int64", [B, T])
        case .features(let size): inputs["input"] = spec("float32", [B, T, .int(size)])
        }
        inputs["lengths"] = spec("int64", [B])
        var outputs: [String: JSONValue] = [:]
        switch outputShape {
        case .sequence(let f): outputs["output"] = spec("float32", [B, T, .int(f)])
        case .pooled(let f): outputs["output"] = spec("float32", [B, .int(f)])
        case .tokens: outputs["output"] = spec("int32", [B, T])
        }
        for (name, rows, width) in stateInputs {
            inputs[name] = spec("float32", [.int(rows), B, .int(width)])
            outputs[String(name.dropLast()) + "_n"] = spec("float32", [.int(rows), B, .int(width)])
        }
        document["inputs"] = .object(inputs)
        document["outputs"] = .object(outputs)
        document["parameters"] = .int(parameterCount)
        document["can_stream"] = .bool(canStream)
        document["can_generate"] = .bool(canGenerate)
        return .object(document)
    }
}
