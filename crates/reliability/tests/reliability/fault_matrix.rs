//! fault_matrix
