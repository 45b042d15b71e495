"""A wrapper kernel launched as a script, ipykernel style, with kernelkit's imports."""

from kernelkit import Kernel


class ShoutKernel(Kernel):
    implementation = "shout"

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False):
        self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code.upper()})
        return {"status": "ok", "execution_count": self.execution_count}


if __name__ == "__main__":
    from kernelkit.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=ShoutKernel)
