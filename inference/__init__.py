"""Running the networks on images: inference modes, batched prediction at the ground truth's or the
input's size, and the writers of depth maps, figures and point clouds."""
