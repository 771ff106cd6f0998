/// The layer types Recur ships, registered through the same interface as plugins.
let builtinLayerKinds: [any LayerKind] =
    [EmbeddingKind(), RecurrentKind(typeName: "rnn"), RecurrentKind(typeName: "lstm"), RecurrentKind(typeName: "gru"),
     LinearKind(), PoolKind()] + ElementwiseKind.Function.allCases.map { ElementwiseKind(function: $0) }
