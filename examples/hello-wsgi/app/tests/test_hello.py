import unittest

from hello import app


class HelloTest(unittest.TestCase):
    def test_index_names_the_version(self):
        answer = app.test_client().get("/").get_data(as_text=True)
        self.assertTrue(answer.startswith("hello "), answer)

    def test_health(self):
        self.assertEqual(app.test_client().get("/health").status_code, 200)


if __name__ == "__main__":
    unittest.main()
