// The C API (Include/recur.h) lands here.
import Recur
