// Backpropagation through time lands here (issue 7).
import Recur
