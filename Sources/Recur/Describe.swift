extension Model {
    /// The model for callers that only see JSON (C API, daemon): the architecture document as
    /// written, plus "inputs" and "outputs" ({name: {"dtype", "shape"}}, with "B" and "T" for the
    /// batch and step dimensions), "parameters", "can_stream" and "can_generate".
    public func describe() -> JSONValue {
        func entry(_ dtype: String, _ shape: [JSONValue]) -> JSONValue {
            .object(["dtype": .string(dtype), "shape": .array(shape)])
        }
        let batch = JSONValue.string("B"), steps = JSONValue.string("T")
        var inputs: [String: JSONValue] = [:]
        switch architecture.input {
        case .tokens: inputs["input"] = entry("int64", [batch, steps])
        case .features(let size): inputs["input"] = entry(DType.float32.rawValue, [batch, steps, .int(size)])
        }
        inputs["lengths"] = entry("int64", [batch])
        var outputs: [String: JSONValue] = [:]
        switch outputShape {
        case .tokens: outputs["output"] = entry(DType.int32.rawValue, [batch, steps])
        case .sequence(let f): outputs["output"] = entry(DType.float32.rawValue, [batch, steps, .int(f)])
        case .pooled(let f): outputs["output"] = entry(DType.float32.rawValue, [batch, .int(f)])
        }
        // outputNames lists the final states in stateInputs' order, after "output".
        for ((name, rows, width), finalName) in zip(stateInputs, outputNames.dropFirst()) {
            let shape = entry(DType.float32.rawValue, [.int(rows), batch, .int(width)])
            inputs[name] = shape
            outputs[finalName] = shape
        }
        var document = architecture.json.objectValue ?? [:]
        document["inputs"] = .object(inputs)
        document["outputs"] = .object(outputs)
        document["parameters"] = .int(parameterCount)
        document["can_stream"] = .bool(canStream)
        document["can_generate"] = .bool(canGenerate)
        return .object(document)
    }
}
