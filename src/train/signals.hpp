// SIGINT / SIGTERM during training: the first asks the trainer to stop after the current step
// (it writes a checkpoint and exits 0); a second one exits at once.
#pragma once

namespace ng {

void install_stop_handlers();
bool stop_requested();
int stop_signal();  // the signal that asked, 0 if none

}  // namespace ng
